// transport/quic/udp_io: a run of datagrams sent with one call arrives as the same
// datagrams (sizes, order, bytes), whether the kernel batches (GSO + GRO) or not.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "transport/quic/udp_io.hpp"

namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using nl::transport::quic::detail::udp_batch_io;

// Receives until `want` datagrams arrived (split by the reported segment size) or 5 s passed.
std::vector<std::vector<std::uint8_t>> receive_datagrams(int fd, udp_batch_io& io, std::size_t want,
                                                         udp::endpoint& from) {
  std::vector<std::vector<std::uint8_t>> got;
  std::vector<std::uint8_t> buf(65536);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::size_t segment = 0;
    boost::system::error_code ec;
    auto n = io.receive(buf.data(), buf.size(), &from, segment, ec);
    if (ec) {
      REQUIRE((ec == asio::error::would_block || ec == asio::error::try_again));
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 100);  // until readable (bounded by the deadline above)
      continue;
    }
    REQUIRE(segment > 0);
    for (std::size_t off = 0; off < n; off += segment) {
      auto len = std::min(segment, n - off);
      got.emplace_back(buf.begin() + static_cast<std::ptrdiff_t>(off),
                       buf.begin() + static_cast<std::ptrdiff_t>(off + len));
    }
  }
  return got;
}

void run_case(bool batching) {
  asio::io_context io;
  udp::socket a(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  udp::socket b(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  a.non_blocking(true);
  b.non_blocking(true);
  udp_batch_io ia(a.native_handle(), batching), ib(b.native_handle(), batching);
  if (!batching) {
    CHECK_FALSE(ia.gso());
  }
  // three datagrams of 1200 bytes and a last one of 345, each filled with its index
  std::vector<std::uint8_t> run;
  std::vector<std::size_t> sizes{1200, 1200, 1200, 345};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    run.insert(run.end(), sizes[i], static_cast<std::uint8_t>(0xA0 + i));
  }
  auto to = b.local_endpoint();
  REQUIRE_FALSE(ia.send(&to, run.data(), run.size(), 1200));
  // and a single datagram after the run
  std::vector<std::uint8_t> one(77, 0x55);
  REQUIRE_FALSE(ia.send(&to, one.data(), one.size(), 0));

  udp::endpoint from;
  auto got = receive_datagrams(b.native_handle(), ib, sizes.size() + 1, from);
  REQUIRE(got.size() == sizes.size() + 1);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    INFO("datagram " << i);
    CHECK(got[i].size() == sizes[i]);
    CHECK(got[i] == std::vector<std::uint8_t>(sizes[i], static_cast<std::uint8_t>(0xA0 + i)));
  }
  CHECK(got.back() == one);
  CHECK(from == a.local_endpoint());
}

}  // namespace

TEST_CASE("udp_io: a GSO run arrives as its datagrams, in order", "[quic][udp_io]") {
  run_case(true);
}

TEST_CASE("udp_io: without batching a run goes out one datagram per call", "[quic][udp_io]") {
  run_case(false);
}
