// Parsing of human units (common/units.hpp): durations, sizes, host:port, gateway URLs.
// Parsers must accept the documented forms and reject everything else without throwing.
#include "common/units.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using nl::edit_distance;
using nl::format_duration;
using nl::parse_duration;
using nl::parse_host_port;
using nl::parse_size;

TEST_CASE("parse_duration accepts the documented units", "[units]") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("15s") == 15s);
  CHECK(parse_duration("2m") == 2min);
  CHECK(parse_duration("2min") == 2min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("30d") == std::chrono::milliseconds(30ll * 86'400'000));
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("0ms") == 0ms);
  CHECK(parse_duration("10") == 10s);  // a bare number is seconds
  CHECK(parse_duration(" 5s ") == 5s);
  CHECK(parse_duration("5 s") == 5s);
}

TEST_CASE("parse_duration rejects malformed input", "[units]") {
  for (const char* bad : {"", " ", "s", "ms", "-1s", "+1s", "1.5s", "1e3ms", "10 sec", "10S", "1h30m", "abc",
                          "1 2s", "99999999999999999999s", "0x10s", "\t", "5ms ms"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_duration(bad));
  }
  // Values that would overflow when scaled are refused, not wrapped.
  CHECK_FALSE(parse_duration("400000000d"));
  CHECK_FALSE(parse_duration("18446744073709551615ms"));
}

TEST_CASE("format_duration picks the largest exact unit", "[units]") {
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(15s) == "15s");
  CHECK(format_duration(2min) == "2m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(std::chrono::milliseconds(86'400'000)) == "1d");
  CHECK(format_duration(0ms) == "0s");
  for (const char* s : {"250ms", "15s", "2m", "1h", "30d", "90s"}) {
    auto d = parse_duration(s);
    REQUIRE(d);
    CHECK(parse_duration(format_duration(*d)) == d);
  }
}

TEST_CASE("parse_size accepts bytes and binary units", "[units]") {
  CHECK(parse_size("65536") == 65536u);
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("100B") == 100u);
  CHECK(parse_size("64KiB") == 64u * 1024);
  CHECK(parse_size("64k") == 64u * 1024);
  CHECK(parse_size("64K") == 64u * 1024);
  CHECK(parse_size("64KB") == 64u * 1024);
  CHECK(parse_size("1MiB") == 1024u * 1024);
  CHECK(parse_size("1m") == 1024u * 1024);
  CHECK(parse_size("2GiB") == 2ull * 1024 * 1024 * 1024);
  CHECK(parse_size(" 512 KiB ") == 512u * 1024);
}

TEST_CASE("parse_size rejects malformed input", "[units]") {
  for (const char* bad : {"", "KiB", "-1", "1.5MiB", "1TiB", "1 k b", "12 34", "0x100", "64kib", "1e6",
                          "99999999999999999999", "1b"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_size(bad));
  }
  CHECK_FALSE(parse_size("2000000000G"));  // overflow is refused, not wrapped
}

TEST_CASE("parse_host_port: names, IPv4, bracketed IPv6, empty host", "[units]") {
  auto hp = parse_host_port("127.0.0.1:80");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 80);
  CHECK(hp->to_string() == "127.0.0.1:80");

  hp = parse_host_port("[::1]:443");
  REQUIRE(hp);
  CHECK(hp->host == "::1");  // without brackets
  CHECK(hp->port == 443);
  CHECK(hp->to_string() == "[::1]:443");

  hp = parse_host_port("[2001:db8::1]:65535");
  REQUIRE(hp);
  CHECK(hp->host == "2001:db8::1");
  CHECK(hp->port == 65535);

  hp = parse_host_port("example.com:22");
  REQUIRE(hp);
  CHECK(hp->host == "example.com");
  CHECK(hp->port == 22);

  hp = parse_host_port(":1080");
  REQUIRE(hp);
  CHECK(hp->host.empty());
  CHECK(hp->port == 1080);

  hp = parse_host_port("localhost:0");
  REQUIRE(hp);
  CHECK(hp->port == 0);
  CHECK_FALSE(parse_host_port("localhost:0", false));
}

TEST_CASE("parse_host_port rejects malformed input", "[units]") {
  for (const char* bad : {"", ":", "host", "host:", "host:65536", "host:-1", "host:+80", "host:8x", "host: 80",
                          "::1:80", "::1", "[::1]", "[::1]:", "[::1]80", "[]:80", "[::1:80", "a b:80",
                          "user@host:80", "host/x:80", "[::1]:99999", "host:80:90", "\x01host:80"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_host_port(bad));
  }
}

TEST_CASE("edit_distance counts single-byte edits", "[units]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("keepalive", "keepalive") == 0);
  CHECK(edit_distance("keepalve", "keepalive") == 1);    // deletion
  CHECK(edit_distance("windoww", "window") == 1);        // insertion
  CHECK(edit_distance("cidr", "cdir") == 2);             // a swap is two substitutions
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("domain", "ports") == edit_distance("ports", "domain"));
}
