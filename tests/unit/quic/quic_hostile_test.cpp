// The QUIC listener against clients that do not play along (transport/quic over real UDP on
// 127.0.0.1 and .2): address validation with Retry, so a source that never receives our
// packets holds nothing, and the caps on handshakes that never finish (max_pending in all,
// max_pending_per_address from one address). A relay between
// client and listener passes what the client sends and only as many answers as a test says.
// Every wait is bounded (run_until / run_test deadlines); nothing sleeps to synchronise.
#include "transport/quic/quic_session.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "quic_harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace nl::test::quic_h;
using namespace std::chrono_literals;
namespace quic = nl::transport::quic;
using udp = boost::asio::ip::udp;

namespace {

// A dial through the relay, with a timeout long enough that the client does not give the
// attempt up while a test runs.
auto dial_through(asio::io_context& io, const udp_relay& relay) {
  auto o = client_to(relay.front.local_endpoint().port());
  o.timeout = 10s;
  return start(io, quic::connect(io.get_executor(), o));
}

// A listener that lets `places` handshakes run at a time (`per_address` of them from one
// address), for 1.5 s at most each.
std::unique_ptr<quic::listener> stingy_listener(asio::io_context& io, std::size_t places = 1,
                                                std::size_t per_address = 1) {
  auto lo = listener_options();
  lo.handshake_timeout = 1500ms;
  lo.max_pending = places;
  lo.max_pending_per_address = per_address;
  return make_listener(io, std::move(lo));
}

// Starts a dial through `relay` that passes the Retry and then stalls, and waits until the
// listener holds a handshake place for it.
auto stall_after_retry(asio::io_context& io, const udp_relay& relay) {
  auto a = dial_through(io, relay);
  REQUIRE(run_until(io, [&] { return relay.passed_back == 1 && relay.forwarded >= 2 && relay.answered >= 2; }, 2s));
  settle(io);
  return a;
}

// A dial straight into `port` that gives up after 600 ms; true if it got no answer.
bool dropped(asio::io_context& io, std::uint16_t port) {
  auto o = client_to(port);
  o.timeout = 600ms;
  auto b = start(io, quic::connect(io.get_executor(), o));
  REQUIRE(run_until(io, [&] { return b->done; }, 3s));
  REQUIRE(b->value.has_value());
  return !b->value->has_value() && b->value->error().code == errc::not_connected;
}

}  // namespace

TEST_CASE("a source that gets no answers takes no handshake place: Retry first", "[quic][hostile]") {
  asio::io_context io;
  auto l = stingy_listener(io);
  auto port = l->local_endpoint().port();
  udp_relay relay(io, l->local_endpoint(), 0);

  // A (a spoofed source, in effect) sends Initials and never sees the Retry they get.
  auto a = dial_through(io, relay);
  REQUIRE(run_until(io, [&] { return relay.answered > 0; }, 2s));
  settle(io);
  CHECK_FALSE(a->done);

  // The only place is still free: B gets in at once.
  quic_pair b;
  connect_pair(io, *l, client_to(port), b, 3000ms);
}

TEST_CASE("handshakes beyond max_pending are dropped until one ends", "[quic][hostile]") {
  asio::io_context io;
  auto l = stingy_listener(io, 1, 0);
  auto port = l->local_endpoint().port();
  udp_relay relay(io, l->local_endpoint(), 1);

  // A gets the Retry, returns its token (so its address is proven) and never sees more: its
  // handshake takes the only place and cannot finish.
  auto a = stall_after_retry(io, relay);

  // B dials straight in: its Initials are dropped while A's handshake is held.
  CHECK(dropped(io, port));

  // The listener gives A up after its handshake_timeout; then C gets in.
  quic_pair c;
  connect_pair(io, *l, client_to(port), c, 6000ms);
}

TEST_CASE("one address holds at most max_pending_per_address handshakes", "[quic][hostile]") {
  asio::io_context io;
  auto l = stingy_listener(io, 8, 1);
  auto port = l->local_endpoint().port();
  udp_relay stalled(io, l->local_endpoint(), 1);

  // A, from 127.0.0.1, holds that address's one place (seven others are free).
  auto a = stall_after_retry(io, stalled);

  // B, from 127.0.0.1 too, is dropped.
  CHECK(dropped(io, port));

  // C, from 127.0.0.2, gets in at once.
  udp_relay other_host(io, l->local_endpoint(), SIZE_MAX, "127.0.0.2");
  quic_pair c;
  connect_pair(io, *l, client_to(other_host.front.local_endpoint().port()), c, 3000ms);

  // Once A's handshake is given up (handshake_timeout), 127.0.0.1 gets in again.
  quic_pair d;
  connect_pair(io, *l, client_to(port), d, 6000ms);
}
