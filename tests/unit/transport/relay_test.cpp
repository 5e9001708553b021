// relay() between a real loopback TCP connection and a mux stream (the agent's and the
// client's data path), and splice() between two streams (the gateway's): bytes both ways,
// EOF becoming a half-close on the other side, and resets/aborts tearing both sides down.
#include "transport/relay.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;
using boost::asio::ip::tcp;
using transport::open_outcome;
using transport::relay_stats;
using transport::stream;

namespace {

struct tcp_pair {
  tcp::socket client;  // the test's end (the user's application)
  tcp::socket server;  // the relay's end
};

tcp_pair make_tcp_pair(asio::io_context& io) {
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket client(io);
  tcp::socket server(io);
  client.connect(acc.local_endpoint());  // loopback: the kernel completes the handshake
  acc.accept(server);
  return {std::move(client), std::move(server)};
}

// One accepted stream between two sessions: `near` is handed to relay(), `far` is the test's.
struct stream_link {
  session_pair p;
  std::unique_ptr<stream> far;
  std::unique_ptr<stream> near;
};

awaitable<void> accept_one(session& s, std::unique_ptr<stream>& out) {
  auto in = co_await s.accept();
  if (in) {
    out = (*in)->accept();
  }
}

awaitable<void> open_one(session& s, std::unique_ptr<stream>& out) {
  auto o = co_await s.open(request_to("127.0.0.1", 22), 1s);
  out = std::move(o.stream);
}

stream_link make_stream_link(asio::io_context& io) {
  stream_link l{make_session_pair(io), nullptr, nullptr};
  auto body = [&]() -> awaitable<void> { co_await when_both(open_one(*l.p.a, l.far), accept_one(*l.p.b, l.near)); };
  REQUIRE(run_test(io, body));
  REQUIRE(l.far);
  REQUIRE(l.near);
  return l;
}

awaitable<std::string> read_socket_to_eof(tcp::socket& s, error_code& last) {
  std::string out;
  char buf[16 * 1024];
  for (;;) {
    error_code ec;
    auto n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    out.append(buf, n);
    if (ec) {
      last = ec;
      co_return out;
    }
  }
}

awaitable<error_code> write_socket(tcp::socket& s, std::string data) {
  error_code ec;
  co_await asio::async_write(s, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
  co_return ec;
}

awaitable<void> write_stream(stream& s, const std::string& data, error_code& ec) {
  ec = co_await s.write(make_bytes(data));
}

awaitable<void> read_socket_exactly(tcp::socket& s, std::size_t n, std::string& out) {
  char buf[64 * 1024];
  while (out.size() < n) {
    error_code ec;
    auto got = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    out.append(buf, got);
    if (ec) {
      co_return;
    }
  }
}

std::string pattern_text(std::uint32_t seed, std::size_t n) {
  auto b = pattern(seed, 0, n);
  return to_string(b);
}


}  // namespace

TEST_CASE("relay: bytes both ways, then EOF from the socket side first", "[relay]") {
  asio::io_context io;
  auto t = make_tcp_pair(io);
  auto l = make_stream_link(io);
  auto relayed = start(io, transport::relay(*l.near, t.server));
  const std::string up = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  const std::string down = pattern_text(4, 1024 * 1024 + 17);

  auto body = [&]() -> awaitable<void> {
    // socket -> stream
    auto ec = co_await write_socket(t.client, up);
    CHECK_FALSE(ec);
    std::string got;
    while (got.size() < up.size()) {
      auto r = co_await l.far->read();
      REQUIRE(r);
      REQUIRE_FALSE(r->empty());
      got += to_string(*r);
    }
    CHECK(got == up);
    // stream -> socket: 1 MiB, more than the window and many relay chunks; written and
    // read concurrently so neither side's buffers need to hold it all.
    std::string back;
    error_code sent;
    co_await when_both(write_stream(*l.far, down, sent), read_socket_exactly(t.client, down.size(), back));
    CHECK_FALSE(sent);
    CHECK(back.size() == down.size());
    CHECK(back == down);
    // EOF from the socket becomes a half-close of the stream; the other way still works.
    t.client.shutdown(tcp::socket::shutdown_send);
    auto eof = co_await l.far->read();
    REQUIRE(eof);
    CHECK(eof->empty());
    co_await l.far->write(make_bytes("still flowing"));
    co_await l.far->shutdown_send();
    error_code last;
    auto tail = co_await read_socket_to_eof(t.client, last);
    CHECK(tail == "still flowing");
    CHECK(last == asio::error::eof);
  };
  REQUIRE(run_test(io, body));
  REQUIRE(run_until(io, [&] { return relayed->done; }, 1s));
  REQUIRE(relayed->error == nullptr);
  REQUIRE(relayed->value.has_value());
  CHECK(relayed->value->to_stream == up.size());
  CHECK(relayed->value->from_stream == down.size() + 13);
  CHECK_FALSE(relayed->value->error);
  CHECK(run_until(io, [&] { return l.p.a->stream_count() == 0 && l.p.b->stream_count() == 0; }, 500ms));
}

TEST_CASE("relay: EOF from the stream side first half-closes the socket", "[relay]") {
  asio::io_context io;
  auto t = make_tcp_pair(io);
  auto l = make_stream_link(io);
  auto relayed = start(io, transport::relay(*l.near, t.server));
  auto body = [&]() -> awaitable<void> {
    co_await l.far->write(make_bytes("banner\n"));
    co_await l.far->shutdown_send();
    error_code last;
    auto got = co_await read_socket_to_eof(t.client, last);
    CHECK(got == "banner\n");
    CHECK(last == asio::error::eof);
    // The socket's own direction is still open.
    auto ec = co_await write_socket(t.client, "reply after EOF");
    CHECK_FALSE(ec);
    t.client.shutdown(tcp::socket::shutdown_send);
    error_code err;
    auto up = co_await read_stream_to_eof(*l.far, err);
    CHECK(up == "reply after EOF");
    CHECK_FALSE(err);
  };
  REQUIRE(run_test(io, body));
  REQUIRE(run_until(io, [&] { return relayed->done; }, 1s));
  CHECK_FALSE(relayed->value->error);
  CHECK(relayed->value->to_stream == 15);
  CHECK(relayed->value->from_stream == 7);
}

TEST_CASE("relay: a stream reset closes the socket and reports the code", "[relay]") {
  asio::io_context io;
  auto t = make_tcp_pair(io);
  auto l = make_stream_link(io);
  auto relayed = start(io, transport::relay(*l.near, t.server));
  auto body = [&]() -> awaitable<void> {
    co_await l.far->write(make_bytes("partial"));
    l.far->reset(errc::refused, "target refused");
    error_code last;
    auto got = co_await read_socket_to_eof(t.client, last);
    // What was already relayed may arrive; then the socket is closed (FIN or RST).
    CHECK((got.empty() || got == "partial"));
    CHECK((last == asio::error::eof || last == asio::error::connection_reset));
  };
  REQUIRE(run_test(io, body));
  REQUIRE(run_until(io, [&] { return relayed->done; }, 1s));
  CHECK(relayed->value->error == make_error_code(errc::refused));
  CHECK(relayed->value->detail == "target refused");
  CHECK_FALSE(t.server.is_open());
}

TEST_CASE("relay: an aborted socket resets the stream", "[relay]") {
  asio::io_context io;
  auto t = make_tcp_pair(io);
  auto l = make_stream_link(io);
  auto relayed = start(io, transport::relay(*l.near, t.server));
  auto body = [&]() -> awaitable<void> {
    auto ec = co_await write_socket(t.client, "hi");
    CHECK_FALSE(ec);
    auto r = co_await l.far->read();
    REQUIRE(r);
    CHECK(to_string(*r) == "hi");
    // SO_LINGER 0 + close: the kernel sends RST instead of FIN.
    t.client.set_option(asio::socket_base::linger(true, 0));
    t.client.close();
    auto after = co_await l.far->read();
    REQUIRE_FALSE(after);
    CHECK(after.error() == make_error_code(errc::aborted));
  };
  REQUIRE(run_test(io, body));
  REQUIRE(run_until(io, [&] { return relayed->done; }, 1s));
  CHECK(relayed->value->error == asio::error::connection_reset);
}

TEST_CASE("relay: the session closing ends the relay and closes the socket", "[relay]") {
  asio::io_context io;
  auto t = make_tcp_pair(io);
  auto l = make_stream_link(io);
  auto relayed = start(io, transport::relay(*l.near, t.server));
  settle(io);
  l.p.a->close(proto::goaway_code::normal, "bye");
  error_code last;
  auto reader = start(io, read_socket_to_eof(t.client, last));
  REQUIRE(run_until(io, [&] { return relayed->done && reader->done; }, 1s));
  CHECK(relayed->value->error == make_error_code(errc::session_closed));
  CHECK((last == asio::error::eof || last == asio::error::connection_reset));
}

TEST_CASE("splice: two streams joined end to end", "[relay]") {
  asio::io_context io;
  auto left = make_stream_link(io);   // client <-> gateway
  auto right = make_stream_link(io);  // gateway <-> agent
  auto spliced = start(io, transport::splice(*left.near, *right.near));
  const std::string big = pattern_text(11, 700 * 1024);
  SECTION("bytes both ways and EOF both ways") {
    auto body = [&]() -> awaitable<void> {
      auto send = [&]() -> awaitable<void> {
        co_await left.far->write(make_bytes(big));
        co_await left.far->shutdown_send();
      };
      error_code err;
      std::string got;
      auto receive = [&]() -> awaitable<void> { got = co_await read_stream_to_eof(*right.far, err); };
      co_await when_both(send(), receive());
      CHECK(got == big);
      CHECK_FALSE(err);
      co_await right.far->write(make_bytes("ack"));
      co_await right.far->shutdown_send();
      auto back = co_await read_stream_to_eof(*left.far, err);
      CHECK(back == "ack");
      CHECK_FALSE(err);
    };
    REQUIRE(run_test(io, body));
    REQUIRE(run_until(io, [&] { return spliced->done; }, 1s));
    CHECK(spliced->value->to_stream == big.size());
    CHECK(spliced->value->from_stream == 3);
    CHECK_FALSE(spliced->value->error);
  }
  SECTION("a reset crosses with its code and message") {
    right.far->reset(errc::denied, "rule 7");
    auto r = start(io, left.far->read());
    REQUIRE(run_until(io, [&] { return r->done && spliced->done; }, 1s));
    REQUIRE_FALSE(r->value->has_value());
    CHECK(r->value->error() == make_error_code(errc::denied));
    CHECK(left.far->error_message() == "rule 7");
    CHECK(spliced->value->error == make_error_code(errc::denied));
  }
}

TEST_CASE("splice_answering: early data goes ahead, the far end's answer becomes the near end's",
          "[relay][early]") {
  asio::io_context io;
  mux_options early;
  early.early_data = true;
  auto left = make_session_pair(io, early, early);   // client (a) <-> gateway (b)
  auto right = make_session_pair(io, early, early);  // gateway (a) <-> agent (b)
  std::unique_ptr<transport::opening_stream> client;
  std::unique_ptr<transport::incoming_stream> at_agent;
  std::shared_ptr<task_state<transport::answered_relay_stats>> spliced;
  // The gateway's part: take the client's stream unanswered, open the agent's early, splice.
  std::unique_ptr<transport::deferred_stream> near;
  std::unique_ptr<transport::opening_stream> onward;
  auto body = [&]() -> awaitable<void> {
    auto out = co_await left.a->open_early(request_to("127.0.0.1", 22), 1s);
    REQUIRE(out.stream);
    client = std::move(out.stream);
    auto ec = co_await client->write(make_bytes("first bytes"));
    CHECK_FALSE(ec);
    auto in = co_await left.b->accept();
    REQUIRE(in);
    near = (*in)->defer();
    auto fwd = co_await right.a->open_early((*in)->request(), 1s);
    REQUIRE(fwd.stream);
    onward = std::move(fwd.stream);
    spliced = start(io, transport::splice_answering(*near, *onward));
    auto a = co_await right.b->accept();
    REQUIRE(a);
    at_agent = std::move(*a);
  };
  REQUIRE(run_test(io, body));
  SECTION("accepted: the early bytes were already at the agent, then both ways") {
    auto agent = at_agent->accept();
    auto body2 = [&]() -> awaitable<void> {
      auto first = co_await agent->read();  // early data, there before the accept
      REQUIRE(first);
      CHECK(to_string(*first) == "first bytes");
      auto ans = co_await client->answer();
      CHECK_FALSE(ans.error);
      auto ec = co_await agent->write(make_bytes("reply"));
      CHECK_FALSE(ec);
      co_await agent->shutdown_send();
      co_await client->shutdown_send();
      error_code err;
      auto back = co_await read_stream_to_eof(*client, err);
      CHECK(back == "reply");
      CHECK_FALSE(err);
    };
    REQUIRE(run_test(io, body2));
    REQUIRE(run_until(io, [&] { return spliced->done; }, 1s));
    CHECK_FALSE(spliced->value->refused);
    CHECK(spliced->value->to_stream == 11);
    CHECK(spliced->value->from_stream == 5);
  }
  SECTION("refused: the client gets the agent's code and message as its answer") {
    at_agent->reject(errc::refused, "connect to 127.0.0.1:22: Connection refused");
    auto ans = start(io, client->answer());
    REQUIRE(run_until(io, [&] { return ans->done && spliced->done; }, 1s));
    CHECK(ans->value->error == make_error_code(errc::refused));
    CHECK(ans->value->message == "connect to 127.0.0.1:22: Connection refused");
    CHECK(spliced->value->refused);
    CHECK(spliced->value->error == make_error_code(errc::refused));
  }
  CHECK(run_until(io, [&] {
    return left.a->stream_count() + left.b->stream_count() + right.a->stream_count() + right.b->stream_count() == 0;
  }, 1s));
}
