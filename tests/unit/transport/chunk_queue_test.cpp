// transport/chunk_queue: FIFO order through pushes, pops, compaction and reuse.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>

#include "transport/chunk_queue.hpp"

using nl::bytes;
using nl::transport::chunk_queue;

namespace {

bytes chunk(std::uint32_t v) { return bytes::copy_of(&v, sizeof v); }

std::uint32_t value(const bytes& b) {
  std::uint32_t v = 0;
  REQUIRE(b.size() == sizeof v);
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

}  // namespace

TEST_CASE("chunk_queue: FIFO order across compaction, a queue that never drains", "[transport][chunk_queue]") {
  chunk_queue q;
  CHECK(q.empty());
  std::uint32_t next_in = 0, next_out = 0;
  // keep 3..9 chunks queued while 10 000 pass through: pops compact the front
  for (int round = 0; round < 10'000; ++round) {
    q.push_back(chunk(next_in++));
    if (q.size() > 3 + static_cast<std::size_t>(round % 7)) {
      CHECK(value(q.front()) == next_out);
      CHECK(value(q.pop_front()) == next_out++);
    }
  }
  CHECK(q.size() == next_in - next_out);
  std::uint32_t expect = next_out;
  for (auto& b : q) {
    CHECK(value(b) == expect++);
  }
  CHECK(value(q.back()) == next_in - 1);
  while (!q.empty()) {
    CHECK(value(q.pop_front()) == next_out++);
  }
  CHECK(next_out == next_in);
  q.emplace_back(16).commit(0);
  CHECK(q.size() == 1);
  q.clear();
  CHECK(q.empty());
}
