// The plaintext payloads of the end-to-end handshake (docs/protocol.md section 6): the
// client's request (destination) in message 1 and the agent's verdict in message 2.
#include "proto/frame.hpp"

#include <catch2/catch.hpp>

#include "bytes_of.hpp"

#include <string>
#include <vector>

using namespace nl::proto;
using nl::errc;

namespace {

using proto_test::bytes_of;

std::vector<std::byte> operator+(std::vector<std::byte> a, std::string_view s) {
  for (char c : s) a.push_back(static_cast<std::byte>(c));
  return a;
}

}  // namespace

TEST_CASE("e2e request: layout", "[e2e_payload]") {
  // u8 version 1 | u8 protocol | u16 port | u8 len + host
  auto req = encode_e2e_request({"example.com", 443, transport_protocol::tcp});
  CHECK(req == bytes_of({1, 1, 0x01, 0xbb, 11}) + "example.com");
  auto udp = encode_e2e_request({"::1", 53, transport_protocol::udp});
  CHECK(udp == bytes_of({1, 2, 0, 53, 3}) + "::1");
}

TEST_CASE("e2e request: round trip", "[e2e_payload]") {
  std::vector<target> targets = {
      {"example.com", 443, transport_protocol::tcp},
      {"192.168.1.10", 22, transport_protocol::tcp},
      {"2001:db8::1", 53, transport_protocol::udp},
      {"x", 1, transport_protocol::udp},
      {std::string(255, 'h'), 65535, transport_protocol::tcp},
  };
  for (const auto& t : targets) {
    CAPTURE(t.host, t.port);
    auto d = decode_e2e_request(encode_e2e_request(t));
    REQUIRE(d);
    CHECK(d->host == t.host);
    CHECK(d->port == t.port);
    CHECK(d->protocol == t.protocol);
  }
}

TEST_CASE("e2e request: malformed", "[e2e_payload]") {
  auto good = bytes_of({1, 1, 0, 22, 4}) + "host";
  REQUIRE(decode_e2e_request(good));

  SECTION("bad version") {
    CHECK_FALSE(decode_e2e_request(bytes_of({0, 1, 0, 22, 4}) + "host"));
    CHECK_FALSE(decode_e2e_request(bytes_of({2, 1, 0, 22, 4}) + "host"));
    CHECK_FALSE(decode_e2e_request(bytes_of({255, 1, 0, 22, 4}) + "host"));
  }
  SECTION("protocol 0 (hidden has no meaning inside the envelope) and 3") {
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 0, 0, 22, 4}) + "host"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 3, 0, 22, 4}) + "host"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 255, 0, 22, 4}) + "host"));
    CHECK(decode_e2e_request(bytes_of({1, 2, 0, 22, 4}) + "host"));
  }
  SECTION("port 0") {
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 0, 4}) + "host"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 2, 0, 0, 4}) + "host"));
    CHECK(decode_e2e_request(bytes_of({1, 1, 0xff, 0xff, 4}) + "host"));
  }
  SECTION("invalid host") {
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 0})));  // empty
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 3}) + "a b"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 3}) + "a/b"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 3}) + "a@b"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 5}) + "[::1]"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 2}) + "a\n"));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 2, 'a', 0})));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 2, 'a', 0x7f})));
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 5}) + "caf\xc3\xa9"));
  }
  SECTION("trailing bytes") {
    auto longer = good;
    longer.push_back(std::byte{0});
    CHECK_FALSE(decode_e2e_request(longer));
    CHECK_FALSE(decode_e2e_request(good + "host"));
  }
  SECTION("truncated") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(decode_e2e_request(std::span<const std::byte>(good).first(n)));
    }
    // A host length past the end.
    CHECK_FALSE(decode_e2e_request(bytes_of({1, 1, 0, 22, 5}) + "host"));
  }
}

TEST_CASE("e2e verdict: layout", "[e2e_payload]") {
  // u8 code | u16 len + message
  CHECK(encode_e2e_verdict({}) == bytes_of({0, 0, 0}));
  CHECK(encode_e2e_verdict({errc::denied, "rule 3"}) == bytes_of({6, 0, 6}) + "rule 3");
}

TEST_CASE("e2e verdict: round trip", "[e2e_payload]") {
  std::vector<e2e_verdict> verdicts = {
      {errc::ok, ""},
      {errc::denied, "denied by rule 2: deny cidr=10.0.0.0/8 (10.1.2.3)"},
      {errc::refused, "connect to db.lan:5432 (10.0.0.5): Connection refused"},
      {errc::e2e_failed, "tab\tis text"},
      {static_cast<errc>(63), std::string(512, 'm')},
  };
  for (const auto& v : verdicts) {
    CAPTURE(static_cast<int>(v.code), v.message);
    auto d = decode_e2e_verdict(encode_e2e_verdict(v));
    REQUIRE(d);
    CHECK(d->code == v.code);
    CHECK(d->message == v.message);
  }
  SECTION("the encoder caps the message at 512 bytes") {
    auto d = decode_e2e_verdict(encode_e2e_verdict({errc::denied, std::string(600, 'x')}));
    REQUIRE(d);
    CHECK(d->message == std::string(512, 'x'));
  }
}

TEST_CASE("e2e verdict: malformed", "[e2e_payload]") {
  auto good = bytes_of({6, 0, 2}) + "no";
  REQUIRE(decode_e2e_verdict(good));

  SECTION("bad code") {
    CHECK(decode_e2e_verdict(bytes_of({63, 0, 0})));
    CHECK_FALSE(decode_e2e_verdict(bytes_of({64, 0, 0})));  // local codes never travel
    CHECK_FALSE(decode_e2e_verdict(bytes_of({65, 0, 0})));
    CHECK_FALSE(decode_e2e_verdict(bytes_of({255, 0, 0})));
  }
  SECTION("control characters in the message") {
    CHECK_FALSE(decode_e2e_verdict(bytes_of({6, 0, 2}) + "a\n"));
    CHECK_FALSE(decode_e2e_verdict(bytes_of({6, 0, 2, 'a', 0})));
    CHECK_FALSE(decode_e2e_verdict(bytes_of({6, 0, 4}) + "\x1b[2J"));
  }
  SECTION("trailing bytes") {
    auto longer = good;
    longer.push_back(std::byte{0});
    CHECK_FALSE(decode_e2e_verdict(longer));
    CHECK_FALSE(decode_e2e_verdict(bytes_of({0, 0, 0, 0})));
  }
  SECTION("truncated") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(decode_e2e_verdict(std::span<const std::byte>(good).first(n)));
    }
    CHECK_FALSE(decode_e2e_verdict(bytes_of({6, 0xff, 0xff}) + "no"));
  }
}
