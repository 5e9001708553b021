// The test double itself: the in-memory channel must behave like an ordered, reliable,
// message-preserving link, or the mux tests prove nothing.
#include "memory_channel.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;

namespace {

awaitable<error_code> write_two(transport::message_channel& ch, std::string_view first, std::string_view second) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(first), asio::buffer(second)};
  co_return co_await ch.write_message(bufs);
}

awaitable<std::string> read_one(transport::message_channel& ch, error_code& ec) {
  auto m = co_await ch.read_message();
  if (!m) {
    ec = m.error();
    co_return std::string{};
  }
  co_return std::string(reinterpret_cast<const char*>(m->data()), m->size());
}

}  // namespace

TEST_CASE("memory channel: buffers become one message, in order", "[memory_channel]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  error_code ec;
  std::string first;
  std::string second;
  auto body = [&]() -> awaitable<void> {
    // (No co_await inside Catch macros: g++ 12 evaluates it more than once there.)
    auto e1 = co_await write_two(*ch.a, "he", "llo");
    auto e2 = co_await write_two(*ch.a, "wor", "ld");
    CHECK_FALSE(e1);
    CHECK_FALSE(e2);
    first = co_await read_one(*ch.b, ec);
    second = co_await read_one(*ch.b, ec);
  };
  REQUIRE(run_test(io, body));
  CHECK(first == "hello");
  CHECK(second == "world");
  CHECK_FALSE(ec);
  CHECK(ch.link->from(0).messages == 2);
  CHECK(ch.link->from(0).bytes == 10);
}

TEST_CASE("memory channel: close_now fails the peer's read after what had arrived", "[memory_channel]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  error_code ec;
  std::string got;
  std::string after;
  auto body = [&]() -> awaitable<void> {
    co_await write_two(*ch.a, "last", "");
    ch.a->close_now();
    got = co_await read_one(*ch.b, ec);
    after = co_await read_one(*ch.b, ec);
    auto w = co_await write_two(*ch.b, "x", "");
    CHECK(w);  // writing to a closed peer fails
  };
  REQUIRE(run_test(io, body));
  CHECK(got == "last");
  CHECK(ec == asio::error::connection_reset);
}

TEST_CASE("memory channel: a graceful close ends the peer's reads with EOF", "[memory_channel]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  error_code ec;
  auto closer = start(io, ch.a->close_gracefully());
  auto reader = start(io, read_one(*ch.b, ec));
  settle(io);
  REQUIRE(reader->done);
  CHECK(ec == asio::error::eof);
  CHECK_FALSE(closer->done);  // waits for the peer's close
  ch.b->close_now();
  settle(io);
  CHECK(closer->done);
}

TEST_CASE("memory channel: stalled writes complete only when unstalled or closed", "[memory_channel]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  ch.link->set_stalled(0, true);
  auto w1 = start(io, write_two(*ch.a, "a", ""));
  settle(io);
  CHECK_FALSE(w1->done);
  ch.link->set_stalled(0, false);
  settle(io);
  REQUIRE(w1->done);
  CHECK_FALSE(*w1->value);
  ch.link->set_stalled(0, true);
  auto w2 = start(io, write_two(*ch.a, "b", ""));
  settle(io);
  CHECK_FALSE(w2->done);
  ch.a->close_now();
  settle(io);
  REQUIRE(w2->done);
  CHECK(*w2->value);
}
