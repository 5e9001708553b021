// Seal+open throughput of the record layer. Hidden (not a test): run by hand with
//   unit_e2e "[.bench]"
// and read the MB/s it prints; measured numbers are quoted in docs/security.md.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>

#include "e2e/e2e.hpp"
#include "tests/unit/e2e/util.hpp"

using namespace nl::e2e;

TEST_CASE("record layer throughput", "[.bench]") {
  for (std::size_t size : {std::size_t{16 * 1024}, std::size_t{64 * 1024}}) {
    const key k = test::counting_key(7);
    sealer s(k);
    opener o(k);
    std::vector<std::byte> plain(size, std::byte{0x5a});
    std::vector<std::byte> wire(size + record_overhead);
    const std::size_t total = std::size_t{1} << 30;  // 1 GiB through each of seal and open
    const std::size_t n = total / size;
    double seal_s = 0, open_s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto len = s.seal(plain, false, wire);
      const auto t1 = std::chrono::steady_clock::now();
      opened_record r;
      // In place, as a relay reading into one buffer would.
      REQUIRE(o.open(std::span(wire).first(len), std::span(wire).subspan(record_header_size), r) == open_status::ok);
      const auto t2 = std::chrono::steady_clock::now();
      seal_s += std::chrono::duration<double>(t1 - t0).count();
      open_s += std::chrono::duration<double>(t2 - t1).count();
    }
    const double mb = static_cast<double>(n * size) / 1e6;
    std::printf("%3zu KiB records: seal %.0f MB/s, open %.0f MB/s, seal+open %.0f MB/s (%zu records)\n",
                size / 1024, mb / seal_s, mb / open_s, mb / (seal_s + open_s), n);
  }
}
