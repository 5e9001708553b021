// The gateway URL parser's cases moved here from common/ when the two URL parsers were
// merged into config::parse_gateway_url.
#include <catch2/catch.hpp>

#include "config/config.hpp"

using nl::config::parse_gateway_url;

TEST_CASE("parse_gateway_url: schemes, default ports, prefix, IPv6", "[units]") {
  auto u = parse_gateway_url("wss://gw.example.com");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "gw.example.com");
  CHECK(u->port == 443);
  CHECK(u->prefix.empty());
  CHECK(u->to_string() == "wss://gw.example.com");  // default port omitted

  u = parse_gateway_url("ws://gw.example.com");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->port == 80);

  u = parse_gateway_url("ws://127.0.0.1:8080/nl/");
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8080);
  CHECK(u->prefix == "/nl");  // trailing '/' dropped

  u = parse_gateway_url("wss://gw:8443/a/b");
  REQUIRE(u);
  CHECK(u->prefix == "/a/b");
  CHECK(u->to_string() == "wss://gw:8443/a/b");

  u = parse_gateway_url("wss://gw/");
  REQUIRE(u);
  CHECK(u->prefix.empty());
  CHECK(u->port == 443);

  u = parse_gateway_url("wss://[::1]:8443/x");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 8443);
  CHECK(u->prefix == "/x");
  CHECK(u->to_string() == "wss://[::1]:8443/x");

  u = parse_gateway_url("ws://[2001:db8::2]");
  REQUIRE(u);
  CHECK(u->host == "2001:db8::2");
  CHECK(u->port == 80);

  u = parse_gateway_url("wss://[2001:db8::2]/p");
  REQUIRE(u);
  CHECK(u->host == "2001:db8::2");
  CHECK(u->port == 443);
  CHECK(u->prefix == "/p");
}

TEST_CASE("parse_gateway_url: the scheme is case-insensitive (RFC 3986)", "[units]") {
  auto u = parse_gateway_url("WSS://gw");
  REQUIRE(u);
  CHECK(u->tls);
}

TEST_CASE("parse_gateway_url rejects malformed URLs", "[units]") {
  for (const char* bad : {"", "gw.example.com", "http://gw", "https://gw", "wss:/gw", "wss://",
                          "ws://", "wss:///nl", "wss://:443", "wss://gw:0", "wss://gw:65536", "wss://gw:",
                          "wss://gw:x", "wss://::1", "wss://[::1", "wss://[]", "wss://[::1]:", "wss://user@gw",
                          "wss://gw/pa th", "wss://gw/p?q=1", "wss://gw/p#frag", "wss://g w"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_gateway_url(bad));
  }
}

TEST_CASE("parse_gateway_url rejects a query or fragment without a path", "[units]") {
  // "wss://gw?x" must not become host "gw?x" (it would surface later as a DNS failure
  // for a host that looks right in the config).
  for (const char* bad : {"wss://gw.example.com?token=abc", "wss://gw#frag", "wss://gw:443?x=1", "wss://]",
                          "wss://gw]"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_gateway_url(bad));
  }
}
