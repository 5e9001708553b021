// accept_with_first_reply (transport/first_reply.hpp): an OPEN that brought early data is
// answered with the first thing sent back, in the same message, or after the delay; an OPEN
// without early data, or with a full early window, is answered at once.
// Every wait is bounded; nothing sleeps. No co_await inside a CHECK (g++ 12 coroutines).
#include "transport/first_reply.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "transport/mux/mux_session.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;
using transport::incoming_stream;
using transport::opening_stream;

namespace {

// a opens with `first` as early data; b takes the OPEN once the early data has arrived.
struct early_open {
  session_pair p;
  std::unique_ptr<opening_stream> opener;
  std::unique_ptr<incoming_stream> in;

  early_open(asio::io_context& io, std::string first) : p(make_session_pair(io, early(), early())) {
    auto body = [this, &first]() -> awaitable<void> {
      auto out = co_await p.a->open_early(request_to("example.com", 80), 2s);
      REQUIRE(out.stream);
      opener = std::move(out.stream);
      if (!first.empty()) {
        auto ec = co_await opener->write(make_bytes(first));
        REQUIRE_FALSE(ec);
      }
      auto r = co_await p.b->accept();
      REQUIRE(r);
      in = std::move(*r);
    };
    REQUIRE(run_test(io, body));
    settle(io);
  }
  std::size_t messages_from_b() const { return p.link->from(1).messages; }
};

}  // namespace

TEST_CASE("first reply: the answer travels in the reply's message, not one of its own", "[mux][early]") {
  asio::io_context io;
  early_open o(io, "ping");
  CHECK(o.in->early_bytes() == 4);
  auto before = o.messages_from_b();
  auto s = transport::accept_with_first_reply(*o.in, io.get_executor(), 10s);
  auto answer = start(io, o.opener->answer());
  settle(io);
  CHECK_FALSE(answer->done);  // nothing sent back yet: no OPEN_RESULT either
  CHECK(o.messages_from_b() == before);

  auto body = [&]() -> awaitable<void> {
    auto r = co_await s->read();
    REQUIRE(r);
    CHECK(to_string(*r) == "ping");
    auto ec = co_await s->write(make_bytes("pong"));
    CHECK_FALSE(ec);
  };
  REQUIRE(run_test(io, body));
  REQUIRE(run_until(io, [&] { return answer->done; }, 2s));
  REQUIRE(answer->value);
  CHECK_FALSE(answer->value->error);
  CHECK(o.messages_from_b() == before + 1);  // OPEN_RESULT and DATA together

  auto read_back = [&]() -> awaitable<void> {
    auto r = co_await o.opener->read();
    REQUIRE(r);
    CHECK(to_string(*r) == "pong");
  };
  REQUIRE(run_test(io, read_back));
}

TEST_CASE("first reply: with nothing sent back, the answer goes after the delay", "[mux][early]") {
  asio::io_context io;
  early_open o(io, "partial request");
  auto s = transport::accept_with_first_reply(*o.in, io.get_executor(), 30ms);
  auto answer = start(io, o.opener->answer());
  settle(io);
  CHECK_FALSE(answer->done);
  REQUIRE(run_until(io, [&] { return answer->done; }, 2s));
  REQUIRE(answer->value);
  CHECK_FALSE(answer->value->error);
}

TEST_CASE("first reply: a reset before any reply reaches the opener as accepted, then reset", "[mux][early]") {
  asio::io_context io;
  early_open o(io, "hello");
  auto s = transport::accept_with_first_reply(*o.in, io.get_executor(), 10s);
  s->reset(errc::aborted, "target went away");
  auto body = [&]() -> awaitable<void> {
    auto ans = co_await o.opener->answer();
    CHECK_FALSE(ans.error);
    auto r = co_await o.opener->read();
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::aborted));
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("first reply: without early data the answer goes at once", "[mux][early]") {
  asio::io_context io;
  early_open o(io, "");
  CHECK(o.in->early_bytes() == 0);
  auto before = o.messages_from_b();
  auto s = transport::accept_with_first_reply(*o.in, io.get_executor(), 10s);
  auto answer = start(io, o.opener->answer());
  REQUIRE(run_until(io, [&] { return answer->done; }, 2s));
  REQUIRE(answer->value);
  CHECK_FALSE(answer->value->error);
  CHECK(o.messages_from_b() == before + 1);
}

TEST_CASE("first reply: a full early window is answered at once (the opener waits for it)", "[mux][early]") {
  asio::io_context io;
  early_open o(io, std::string(proto::early_window, 'x'));
  REQUIRE(o.in->early_bytes() == proto::early_window);
  auto s = transport::accept_with_first_reply(*o.in, io.get_executor(), 10s);
  auto answer = start(io, o.opener->answer());
  REQUIRE(run_until(io, [&] { return answer->done; }, 2s));
  REQUIRE(answer->value);
  CHECK_FALSE(answer->value->error);
}
