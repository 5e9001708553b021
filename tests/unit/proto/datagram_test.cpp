#include "proto/datagram.hpp"

#include <catch2/catch.hpp>

#include "bytes_of.hpp"

#include <vector>

using namespace nl::proto;

namespace {

using proto_test::bytes_of;

// One framed datagram: the header from datagram_header() and `size` bytes of `fill`.
std::vector<std::byte> framed(std::size_t size, int fill = 0x5a) {
  auto h = datagram_header(size);
  std::vector<std::byte> out(h.begin(), h.end());
  out.resize(out.size() + size, static_cast<std::byte>(fill));
  return out;
}

}  // namespace

TEST_CASE("datagram_header is the u16 big-endian length", "[datagram]") {
  CHECK(datagram_header(0) == std::array{std::byte{0}, std::byte{0}});
  CHECK(datagram_header(1) == std::array{std::byte{0}, std::byte{1}});
  CHECK(datagram_header(255) == std::array{std::byte{0}, std::byte{0xff}});
  CHECK(datagram_header(256) == std::array{std::byte{1}, std::byte{0}});
  CHECK(datagram_header(0x1234) == std::array{std::byte{0x12}, std::byte{0x34}});
  CHECK(datagram_header(max_datagram) == std::array{std::byte{0xff}, std::byte{0xe3}});  // 65507
}

TEST_CASE("parse_datagram waits for a whole header and payload", "[datagram]") {
  SECTION("0 and 1 bytes are incomplete") {
    CHECK(parse_datagram({}).status == parse_status::incomplete);
    auto one = bytes_of({0x00});
    CHECK(parse_datagram(one).status == parse_status::incomplete);
    // Even a first byte that promises more than max_datagram: the length is not known yet.
    auto big = bytes_of({0xff});
    CHECK(parse_datagram(big).status == parse_status::incomplete);
  }
  SECTION("every prefix of a datagram is incomplete") {
    auto d = framed(5);
    for (std::size_t n = 0; n < d.size(); ++n) {
      CAPTURE(n);
      auto v = parse_datagram(std::span<const std::byte>(d).first(n));
      CHECK(v.status == parse_status::incomplete);
      CHECK(v.consumed == 0);
      CHECK(v.payload.empty());
    }
  }
}

TEST_CASE("parse_datagram on exactly one datagram", "[datagram]") {
  auto d = bytes_of({0x00, 0x03, 'a', 'b', 'c'});
  auto v = parse_datagram(d);
  REQUIRE(v.status == parse_status::ok);
  CHECK(v.consumed == 5);
  REQUIRE(v.payload.size() == 3);
  CHECK(v.payload.data() == d.data() + datagram_header_size);  // a view, not a copy
  CHECK(std::to_integer<char>(v.payload[0]) == 'a');
  CHECK(std::to_integer<char>(v.payload[2]) == 'c');

  SECTION("an empty datagram is a datagram") {
    auto e = bytes_of({0x00, 0x00});
    auto w = parse_datagram(e);
    REQUIRE(w.status == parse_status::ok);
    CHECK(w.consumed == datagram_header_size);
    CHECK(w.payload.empty());
  }
}

TEST_CASE("parse_datagram size limits", "[datagram]") {
  SECTION("max_datagram is accepted") {
    auto d = framed(max_datagram);
    auto v = parse_datagram(d);
    REQUIRE(v.status == parse_status::ok);
    CHECK(v.payload.size() == max_datagram);
    CHECK(v.consumed == d.size());
    // One byte short of it is still incomplete, not malformed.
    CHECK(parse_datagram(std::span<const std::byte>(d).first(d.size() - 1)).status == parse_status::incomplete);
  }
  SECTION("max_datagram + 1 is malformed as soon as the header is seen") {
    auto h = bytes_of({0xff, 0xe4});  // 65508
    auto v = parse_datagram(h);
    CHECK(v.status == parse_status::malformed);
    CHECK(v.consumed == 0);
    auto full = h;
    full.resize(2 + max_datagram + 1, std::byte{1});
    CHECK(parse_datagram(full).status == parse_status::malformed);
  }
  SECTION("the largest length field is malformed") {
    auto h = bytes_of({0xff, 0xff, 0x00});
    CHECK(parse_datagram(h).status == parse_status::malformed);
  }
}

TEST_CASE("parse_datagram walks datagrams back to back", "[datagram]") {
  std::vector<std::size_t> sizes = {3, 0, 1, 1500, 0, max_datagram, 7};
  std::vector<std::byte> stream;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto d = framed(sizes[i], static_cast<int>(i + 1));
    stream.insert(stream.end(), d.begin(), d.end());
  }
  // A partial datagram at the end stays in the buffer.
  stream.push_back(std::byte{0});
  stream.push_back(std::byte{9});
  stream.push_back(std::byte{0xee});

  std::span<const std::byte> in(stream);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    CAPTURE(i);
    auto v = parse_datagram(in);
    REQUIRE(v.status == parse_status::ok);
    CHECK(v.payload.size() == sizes[i]);
    CHECK(v.consumed == datagram_header_size + sizes[i]);
    for (auto b : v.payload) {
      if (b != static_cast<std::byte>(i + 1)) {
        FAIL("payload byte from another datagram");
      }
    }
    in = in.subspan(v.consumed);
  }
  CHECK(in.size() == 3);
  CHECK(parse_datagram(in).status == parse_status::incomplete);
}
