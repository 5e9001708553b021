// nl::bytes (common/bytes.hpp): the owned buffer that carries relay data by move.
#include "common/bytes.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string_view>

using nl::bytes;

namespace {

std::string_view view(const bytes& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

TEST_CASE("bytes: copy_of, size and span", "[bytes]") {
  auto b = bytes::copy_of("hello", 5);
  CHECK(b.size() == 5);
  CHECK(b.capacity() == 5);
  CHECK_FALSE(b.empty());
  CHECK(view(b) == "hello");
  CHECK(b.span().size() == 5);
  CHECK(b.buffer().size() == 5);

  auto e = bytes::copy_of(std::span<const std::byte>{});
  CHECK(e.empty());
  CHECK(e.size() == 0);
  bytes d;
  CHECK(d.empty());
  CHECK(d.capacity() == 0);
  CHECK(d.buffer().size() == 0);
}

TEST_CASE("bytes: prepare, commit and consume", "[bytes]") {
  bytes b(16);
  CHECK(b.empty());
  auto room = b.prepare();
  CHECK(room.size() == 16);
  std::memcpy(room.data(), "abcdef", 6);
  b.commit(6);
  CHECK(view(b) == "abcdef");
  CHECK(b.prepare().size() == 10);
  b.consume(2);
  CHECK(view(b) == "cdef");
  b.consume(100);  // more than there is: empties, never underflows
  CHECK(b.empty());
  CHECK(b.size() == 0);
  b.clear();
  CHECK(b.prepare().size() == 16);
}

TEST_CASE("bytes: moving transfers the buffer and empties the source", "[bytes]") {
  auto a = bytes::copy_of("payload", 7);
  const auto* p = a.data();
  bytes b(std::move(a));
  CHECK(b.data() == p);  // no copy
  CHECK(view(b) == "payload");
  CHECK(a.empty());      // NOLINT(bugprone-use-after-move): documented moved-from state
  CHECK(a.capacity() == 0);
  bytes c;
  c = std::move(b);
  CHECK(view(c) == "payload");
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
}
