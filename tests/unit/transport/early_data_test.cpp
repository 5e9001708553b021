// Early data (WebSocket sub-protocol nl.2) in the frame multiplexer: an opener's bytes and
// FIN may travel before the acceptor's OPEN_RESULT, up to proto::early_window; the acceptor
// may read them before it answers (defer()); a session without early data makes the same
// calls wait for the answer instead of breaking the protocol.
// Every wait is bounded; nothing sleeps. No co_await inside a CHECK: g++ 12 may evaluate
// the operand of Catch's macros more than once in a coroutine.
#include "transport/mux/mux_session.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;
using proto::goaway_code;
using transport::deferred_stream;
using transport::early_outcome;
using transport::opening_stream;

namespace {

bool no_streams(const session_pair& p) { return p.a->stream_count() == 0 && p.b->stream_count() == 0; }

awaitable<std::unique_ptr<deferred_stream>> take_deferred(session& s) {
  auto in = co_await s.accept();
  REQUIRE(in);
  co_return (*in)->defer();
}

}  // namespace

TEST_CASE("early data: bytes and FIN written before the answer reach the acceptor before it answers",
          "[mux][early]") {
  asio::io_context io;
  auto p = make_session_pair(io, early(), early());
  auto body = [&]() -> awaitable<void> {
    auto out = co_await p.a->open_early(request_to("example.com", 80), 1s);
    REQUIRE(out.stream);
    auto& opener = *out.stream;
    auto ec = co_await opener.write(make_bytes("GET / HTTP/1.0\r\n\r\n"));
    CHECK_FALSE(ec);
    co_await opener.shutdown_send();  // returns at once: the FIN is early data too

    auto acceptor = co_await take_deferred(*p.b);
    auto up = co_await read_stream_to_eof(*acceptor, ec);  // nothing answered yet
    CHECK_FALSE(ec);
    CHECK(up == "GET / HTTP/1.0\r\n\r\n");

    acceptor->answer(errc::ok, {}, {});
    auto ans = co_await opener.answer();
    CHECK_FALSE(ans.error);
    ec = co_await acceptor->write(make_bytes("HTTP/1.0 200 OK\r\n\r\n"));
    CHECK_FALSE(ec);
    co_await acceptor->shutdown_send();
    auto down = co_await read_stream_to_eof(opener, ec);
    CHECK_FALSE(ec);
    CHECK(down == "HTTP/1.0 200 OK\r\n\r\n");
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(p); }, 500ms));
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
}

TEST_CASE("early data: a refusal after early data fails the opener with the code and message", "[mux][early]") {
  asio::io_context io;
  auto p = make_session_pair(io, early(), early());
  auto body = [&]() -> awaitable<void> {
    auto out = co_await p.a->open_early(request_to("10.0.0.1", 22), 1s);
    REQUIRE(out.stream);
    auto& opener = *out.stream;
    auto ec = co_await opener.write(make_bytes("SSH-2.0-test\r\n"));
    CHECK_FALSE(ec);

    auto acceptor = co_await take_deferred(*p.b);
    auto first = co_await acceptor->read();
    REQUIRE(first);
    CHECK(to_string(*first) == "SSH-2.0-test\r\n");
    acceptor->answer(errc::refused, "connect to 10.0.0.1:22: Connection refused", {});

    auto ans = co_await opener.answer();
    CHECK(ans.error == make_error_code(errc::refused));
    CHECK(ans.message == "connect to 10.0.0.1:22: Connection refused");
    auto r = co_await opener.read();
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::refused));
    ec = co_await opener.write(make_bytes("more"));
    CHECK(ec == make_error_code(errc::refused));
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(p); }, 500ms));
  CHECK(p.b->is_open());
}

TEST_CASE("early data: beyond the early window, writes wait for the answer", "[mux][early]") {
  asio::io_context io;
  auto p = make_session_pair(io, early(), early());
  constexpr std::size_t total = proto::early_window + 20 * 1024;
  std::unique_ptr<opening_stream> opener;
  std::unique_ptr<deferred_stream> acceptor;
  auto setup = [&]() -> awaitable<void> {
    auto out = co_await p.a->open_early(request_to("example.com", 80), 2s);
    REQUIRE(out.stream);
    opener = std::move(out.stream);
    acceptor = co_await take_deferred(*p.b);
  };
  REQUIRE(run_test(io, setup));
  auto writer = start(io, write_pattern(*opener, 7, total, 4096, true));
  settle(io);
  CHECK_FALSE(writer->done);  // stopped at the early window
  // The acceptor has exactly the early window before it answers.
  std::uint64_t got = 0;
  auto reader = [&]() -> awaitable<void> {
    while (got < proto::early_window) {
      auto chunk = co_await acceptor->read();
      REQUIRE(chunk);
      REQUIRE_FALSE(chunk->empty());
      got += chunk->size();
    }
  };
  REQUIRE(run_test(io, reader));
  settle(io);
  CHECK(got == proto::early_window);
  CHECK_FALSE(writer->done);
  acceptor->answer(errc::ok, {}, {});
  auto rest = start(io, read_all(*acceptor));
  REQUIRE(run_until(io, [&] { return writer->done && rest->done; }, 2s));
  REQUIRE(rest->value);
  CHECK(rest->value->eof);
  CHECK(got + rest->value->total == total);
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
}

TEST_CASE("without early data (an nl.1 peer), open_early writes wait for the answer", "[mux][early]") {
  asio::io_context io;
  auto p = make_session_pair(io);  // early_data off on both ends
  auto body = [&]() -> awaitable<void> {
    auto out = co_await p.a->open_early(request_to("example.com", 80), 1s);
    REQUIRE(out.stream);
    auto& opener = *out.stream;
    auto send = [&]() -> awaitable<void> {  // named: the coroutine refers to its captures
      auto ec = co_await opener.write(make_bytes("hello"));
      CHECK_FALSE(ec);
      co_await opener.shutdown_send();
    };
    auto w = start(io, send());
    auto in = co_await p.b->accept();
    REQUIRE(in);
    auto acceptor = (*in)->defer();
    CHECK_FALSE(w->done);  // nothing may go before the answer on this session
    acceptor->answer(errc::ok, {}, {});
    error_code ec;
    auto up = co_await read_stream_to_eof(*acceptor, ec);
    CHECK_FALSE(ec);
    CHECK(up == "hello");
    CHECK(w->done);
    auto ans = co_await opener.answer();
    CHECK_FALSE(ans.error);
  };
  REQUIRE(run_test(io, body));
  CHECK(p.a->is_open());  // no protocol error on either side
  CHECK(p.b->is_open());
}

TEST_CASE("open_early: no answer within the timeout fails the stream with errc::timeout", "[mux][early]") {
  asio::io_context io;
  auto p = make_session_pair(io, early(), early());
  std::unique_ptr<transport::incoming_stream> held;  // accepted, never answered
  auto body = [&]() -> awaitable<void> {
    auto out = co_await p.a->open_early(request_to("example.com", 80), 100ms);
    REQUIRE(out.stream);
    auto in = co_await p.b->accept();
    REQUIRE(in);
    held = std::move(*in);
    auto ans = co_await out.stream->answer();
    CHECK(ans.error == make_error_code(errc::timeout));
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("early data over the early window is a protocol error", "[mux][early][hostile]") {
  asio::io_context io;
  auto p = make_session_pair(io, early(), early());
  auto held = start(io, p.b->accept());  // the OPEN waits in the accept queue, unanswered
  proto::open_body ob;
  ob.window = 64 * 1024;
  ob.dest = {"example.com", 80, proto::transport_protocol::tcp};
  ob.peer = "home";
  std::vector<std::byte> msg;
  proto::append_open(msg, 1, ob);
  auto data = raw_data(1, proto::early_window + 1);
  msg.insert(msg.end(), data.begin(), data.end());
  REQUIRE(run_until(io, [&] { return p.a->is_open(); }, 500ms));
  p.link->inject(1, msg);
  REQUIRE(run_until(io, [&] { return !p.b->is_open(); }, 1s));
  CHECK(p.b->closed_by().code == goaway_code::protocol);
}

TEST_CASE("on a session without early data, DATA before the answer is still a protocol error",
          "[mux][early][hostile]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto held = start(io, p.b->accept());
  proto::open_body ob;
  ob.window = 64 * 1024;
  ob.dest = {"example.com", 80, proto::transport_protocol::tcp};
  std::vector<std::byte> msg;
  proto::append_open(msg, 1, ob);
  auto data = raw_data(1, 10);
  msg.insert(msg.end(), data.begin(), data.end());
  p.link->inject(1, msg);
  REQUIRE(run_until(io, [&] { return !p.b->is_open(); }, 1s));
  CHECK(p.b->closed_by().code == goaway_code::protocol);
}
