// The QUIC listener against clients that do not play along (transport/quic over real UDP on
// 127.0.0.1): address validation with Retry, so a source that never receives our packets
// holds nothing, and the max_pending cap on handshakes that never finish. A relay between
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

// A listener that lets one handshake run at a time, for 1.5 s at most.
std::unique_ptr<quic::listener> one_place_listener(asio::io_context& io) {
  auto lo = listener_options();
  lo.handshake_timeout = 1500ms;
  lo.max_pending = 1;
  return make_listener(io, std::move(lo));
}

}  // namespace

TEST_CASE("a source that gets no answers takes no handshake place: Retry first", "[quic][hostile]") {
  asio::io_context io;
  auto l = one_place_listener(io);
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
  auto l = one_place_listener(io);
  auto port = l->local_endpoint().port();
  udp_relay relay(io, l->local_endpoint(), 1);

  // A gets the Retry, returns its token (so its address is proven) and never sees more: its
  // handshake takes the only place and cannot finish.
  auto a = dial_through(io, relay);
  REQUIRE(run_until(io, [&] { return relay.passed_back == 1 && relay.forwarded >= 2 && relay.answered >= 2; }, 2s));
  settle(io);

  // B dials straight in: its Initials are dropped while A's handshake is held.
  auto b_opts = client_to(port);
  b_opts.timeout = 600ms;
  auto b = start(io, quic::connect(io.get_executor(), b_opts));
  REQUIRE(run_until(io, [&] { return b->done; }, 3s));
  REQUIRE(b->value.has_value());
  REQUIRE_FALSE(b->value->has_value());  // no answer: the dial gives up (not_connected)
  CHECK(b->value->error().code == errc::not_connected);

  // The listener gives A up after its handshake_timeout; then C gets in.
  quic_pair c;
  connect_pair(io, *l, client_to(port), c, 6000ms);
}
