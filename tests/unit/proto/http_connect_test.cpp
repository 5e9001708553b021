#include "proto/http_connect.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace nl::proto;
using namespace nl::proto::http;
using nl::errc;

TEST_CASE("CONNECT heads that parse", "[http]") {
  struct row {
    std::string head;
    std::string host;
    std::uint16_t port;
    std::string version;
  };
  std::vector<row> rows = {
      {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "example.com", 443, "HTTP/1.1"},
      {"CONNECT 10.0.0.1:22 HTTP/1.0\r\n\r\n", "10.0.0.1", 22, "HTTP/1.0"},
      {"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nUser-Agent: curl/7.88\r\nX-Empty:\r\n\r\n", "2001:db8::1", 8443,
       "HTTP/1.1"},
      {"CONNECT h:65535 HTTP/1.1\r\nA:\tb \t\r\n\r\n", "h", 65535, "HTTP/1.1"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.head);
    auto tunnel = r.head + "\x16\x03\x01";  // client's TLS hello right behind the head
    auto res = parse_request(tunnel);
    REQUIRE(res.status == head_status::ok);
    CHECK(res.req.method == "CONNECT");
    CHECK(res.req.dest.host == r.host);
    CHECK(res.req.dest.port == r.port);
    CHECK(res.req.dest.protocol == transport_protocol::tcp);
    CHECK(res.req.version == r.version);
    CHECK_FALSE(res.req.proxy_auth);
    CHECK(res.consumed == r.head.size());
    for (std::size_t n = 0; n < r.head.size(); ++n) {
      CAPTURE(n);
      REQUIRE(parse_request(std::string_view(r.head).substr(0, n)).status == head_status::incomplete);
    }
  }
}

TEST_CASE("the byte-span overload agrees", "[http]") {
  std::string_view head = "CONNECT a.b:1 HTTP/1.1\r\n\r\n";
  auto res = parse_request(std::as_bytes(std::span(head.data(), head.size())));
  REQUIRE(res.status == head_status::ok);
  CHECK(res.req.dest.host == "a.b");
}

TEST_CASE("Proxy-Authorization Basic", "[http]") {
  // "alice:pa:ss" and "bob:" in base64
  auto parse_auth = [](const std::string& line) {
    return parse_request("CONNECT h:1 HTTP/1.1\r\n" + line + "\r\n\r\n");
  };
  SECTION("decoded, header name and scheme case-insensitive") {
    for (auto line : {"Proxy-Authorization: Basic YWxpY2U6cGE6c3M=", "proxy-authorization:basic  YWxpY2U6cGE6c3M=  ",
                      "PROXY-AUTHORIZATION: BASIC YWxpY2U6cGE6c3M="}) {
      CAPTURE(line);
      auto r = parse_auth(line);
      REQUIRE(r.status == head_status::ok);
      REQUIRE(r.req.proxy_auth);
      CHECK(r.req.proxy_auth->user == "alice");
      CHECK(r.req.proxy_auth->pass == "pa:ss");
    }
  }
  SECTION("empty password") {
    auto r = parse_auth("Proxy-Authorization: Basic Ym9iOg==");
    REQUIRE(r.req.proxy_auth);
    CHECK(r.req.proxy_auth->user == "bob");
    CHECK(r.req.proxy_auth->pass.empty());
  }
  SECTION("unusable credentials are absent, not an error") {
    for (auto line : {"Proxy-Authorization: Bearer abc", "Proxy-Authorization: Basic", "Proxy-Authorization: Basic !!!!",
                      "Proxy-Authorization: Basic YWxpY2U=" /* no colon */,
                      "Proxy-Authorization: Basic YWxpY2U6cGE6c3M" /* unpadded */,
                      "Proxy-Authorization: Basic YWxpY2U6cGE6c3M=x", "Proxy-Authorization: BasicYWxpY2U6cGE6c3M=",
                      "Authorization: Basic YWxpY2U6cGE6c3M="}) {
      CAPTURE(line);
      auto r = parse_auth(line);
      REQUIRE(r.status == head_status::ok);
      CHECK_FALSE(r.req.proxy_auth);
    }
  }
  SECTION("duplicate header is malformed") {
    auto r = parse_auth("Proxy-Authorization: Basic Ym9iOg==\r\nProxy-Authorization: Basic YWxpY2U6cGE6c3M=");
    CHECK(r.status == head_status::malformed);
  }
}

TEST_CASE("other methods are told apart", "[http]") {
  for (std::string head : {"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
                           "POST / HTTP/1.0\r\n\r\n", "connect h:1 HTTP/1.1\r\n\r\n"}) {
    CAPTURE(head);
    auto r = parse_request(head);
    CHECK(r.status == head_status::method_not_allowed);
    CHECK(r.consumed == head.size());
    CHECK_FALSE(r.req.method.empty());
  }
}

TEST_CASE("malformed heads", "[http]") {
  std::vector<std::string> heads = {
      "\r\n\r\n",
      "CONNECT\r\n\r\n",
      "CONNECT h:1\r\n\r\n",
      "CONNECT  h:1 HTTP/1.1\r\n\r\n",
      "CONNECT h:1  HTTP/1.1\r\n\r\n",
      "CONNECT h:1 HTTP/1.1 x\r\n\r\n",
      "CONNECT h:1 HTTP/2.0\r\n\r\n",
      "CONNECT h:1 HTTP/1.1x\r\n\r\n",
      "CONNECT h:1 http/1.1\r\n\r\n",
      "CONNECT h:0 HTTP/1.1\r\n\r\n",
      "CONNECT h:65536 HTTP/1.1\r\n\r\n",
      "CONNECT h HTTP/1.1\r\n\r\n",
      "CONNECT :80 HTTP/1.1\r\n\r\n",
      "CONNECT ::1:80 HTTP/1.1\r\n\r\n",
      "CONNECT [::1:80 HTTP/1.1\r\n\r\n",
      "CONNECT [foo]:80 HTTP/1.1\r\n\r\n",
      "CONNECT []:80 HTTP/1.1\r\n\r\n",
      "CONNECT http://h:1 HTTP/1.1\r\n\r\n",
      "CONNECT user@h:1 HTTP/1.1\r\n\r\n",
      "CONNECT h:1/x HTTP/1.1\r\n\r\n",
      "CONNECT h:+1 HTTP/1.1\r\n\r\n",
      "CONNECT h\xc3\xa9:1 HTTP/1.1\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\nNoColon\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\nSpace : x\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\n: x\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\nA: b\nB: c\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\nA: b\rB: c\r\n\r\n",
      std::string("CONNECT h:1 HTTP/1.1\r\nA: \0\r\n\r\n", 30),
      "CONNECT h:1 HTTP/1.1\r\nA: \x7f\r\n\r\n",
      "CON\x01NECT h:1 HTTP/1.1\r\n\r\n",
      "CONNECT h:1 HTTP/1.1\r\r\n\r\n",
  };
  for (const auto& h : heads) {
    CAPTURE(h);
    auto r = parse_request(h);
    CHECK(r.status == head_status::malformed);
    CHECK(r.error != nullptr);
  }
}

TEST_CASE("head size limit", "[http]") {
  std::string start = "CONNECT h:1 HTTP/1.1\r\nX-Pad: ";
  SECTION("exactly the limit is fine") {
    std::string head = start + std::string(max_head_size - start.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(head.size() == max_head_size);
    CHECK(parse_request(head).status == head_status::ok);
  }
  SECTION("one byte more is too large, even once complete") {
    std::string head = start + std::string(max_head_size - start.size() - 3, 'a') + "\r\n\r\n";
    auto r = parse_request(head);
    CHECK(r.status == head_status::malformed);
    CHECK(std::string_view(r.error) == "request head too large");
  }
  SECTION("without an end, incomplete until the limit") {
    std::string partial = start + std::string(max_head_size - start.size() - 1, 'a');
    CHECK(parse_request(partial).status == head_status::incomplete);
    partial += 'a';
    CHECK(parse_request(partial).status == head_status::malformed);
  }
}

TEST_CASE("looks_like_http", "[http]") {
  CHECK(looks_like_http(std::byte{'C'}));
  CHECK(looks_like_http(std::byte{'G'}));
  CHECK(looks_like_http(std::byte{'A'}));
  CHECK(looks_like_http(std::byte{'Z'}));
  CHECK_FALSE(looks_like_http(std::byte{0x05}));
  CHECK_FALSE(looks_like_http(std::byte{0x04}));
  CHECK_FALSE(looks_like_http(std::byte{'c'}));
  CHECK_FALSE(looks_like_http(std::byte{0x16}));
}

TEST_CASE("responses", "[http]") {
  CHECK(response(200) == "HTTP/1.1 200 Connection established\r\n\r\n");
  CHECK(response(200, "ignored") == "HTTP/1.1 200 Connection established\r\n\r\n");
  CHECK(response(403, "denied by policy") ==
        "HTTP/1.1 403 Forbidden\r\nX-NL-Error: denied by policy\r\nContent-Length: 0\r\n\r\n");
  CHECK(response(407, "proxy authentication required") ==
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"nl\"\r\n"
        "X-NL-Error: proxy authentication required\r\nContent-Length: 0\r\n\r\n");
  CHECK(response(405, "") == "HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\n\r\n");
  CHECK(response(502, "connection refused by target") ==
        "HTTP/1.1 502 Bad Gateway\r\nX-NL-Error: connection refused by target\r\nContent-Length: 0\r\n\r\n");
  CHECK(response(504) == "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n");
  CHECK(response(400, "bad\r\nSet-Cookie: x") ==
        "HTTP/1.1 400 Bad Request\r\nX-NL-Error: bad  Set-Cookie: x\r\nContent-Length: 0\r\n\r\n");
  auto long_reason = response(502, std::string(10'000, 'r'));
  CHECK(long_reason.size() < 400);
}

TEST_CASE("status for stream outcomes", "[http]") {
  CHECK(status_for(errc::ok) == 200);
  CHECK(status_for(errc::denied) == 403);
  CHECK(status_for(errc::timeout) == 504);
  CHECK(status_for(errc::bad_request) == 400);
  for (auto e : {errc::refused, errc::net_unreachable, errc::host_unreachable, errc::dns_failure, errc::no_agent,
                 errc::internal, errc::aborted, errc::not_connected}) {
    CHECK(status_for(e) == 502);
  }
}
