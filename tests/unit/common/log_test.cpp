// common/log.hpp's log_throttle: the first event is reported at once, then at most one line
// per period, each with the count of the events since the line before. Times are given.
#include "common/log.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("log_throttle: one line per period, with the events since the last line", "[log]") {
  nl::log_throttle t(10s);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(t.note(t0) == 1);        // the first at once
  CHECK(t.note(t0 + 1s) == 0);
  CHECK(t.note(t0 + 9s) == 0);
  CHECK(t.note(t0 + 10s) == 3);  // due again: the two held back and this one
  CHECK(t.note(t0 + 12s) == 0);
  CHECK(t.note(t0 + 25s) == 2);
}
