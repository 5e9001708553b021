// HTTP/1.x CONNECT proxy requests (RFC 9110 §9.3.6), as accepted by `nl-client socks`
// on the same port as SOCKS5: an incremental parser for the request head, the status a
// stream outcome maps to, and the response heads the proxy sends. Only CONNECT with an
// authority-form target is served; any other method gets a distinct status so the
// caller can answer 405. Proxy-Authorization: Basic is decoded for the caller to check.
// Pure functions: no I/O, never throw on hostile input.
// Thread-safety: pure functions; types are plain values.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "proto/frame.hpp"

namespace nl::proto::http {

// Largest request head (request line + headers + the blank line) the proxy reads.
inline constexpr std::size_t max_head_size = 8 * 1024;

enum class head_status {
  ok,                  // a complete CONNECT request
  incomplete,          // no "\r\n\r\n" yet: read more
  malformed,           // answer 400 and close
  method_not_allowed,  // a well-formed request whose method is not CONNECT: answer 405
};

struct basic_credentials {
  std::string user;
  std::string pass;
};

struct request {
  std::string method;   // as sent (case-sensitive, "CONNECT" when ok)
  target dest;          // host without brackets, port != 0; protocol tcp
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"
  // Decoded "Proxy-Authorization: Basic ..."; absent when the header is missing or is
  // not well-formed Basic credentials (either way the caller answers 407 if it needs them).
  std::optional<basic_credentials> proxy_auth;
};

struct head_result {
  head_status status = head_status::incomplete;
  request req;               // filled when ok (method and version also when method_not_allowed)
  std::size_t consumed = 0;  // length of the head including the blank line (ok / not allowed)
  const char* error = nullptr;  // static text when malformed or method_not_allowed
};

// Parses the request head at the front of `in`. Bytes after the head belong to the tunnel.
head_result parse_request(std::span<const std::byte> in);
head_result parse_request(std::string_view in);

// True when a connection's first byte looks like an HTTP method (an ASCII uppercase
// letter); a SOCKS5 client starts with 0x05 instead.
bool looks_like_http(std::byte first) noexcept;

// A complete response head. 200 is "HTTP/1.1 200 Connection established\r\n\r\n"; any
// other status carries `X-NL-Error: <reason_text>` (when not empty; control characters
// are replaced, so it cannot inject headers), `Proxy-Authenticate: Basic realm="nl"` for
// 407, `Allow: CONNECT` for 405, and `Content-Length: 0`.
std::string response(int status, std::string_view reason_text = {});

// Standard reason phrase for the status codes the proxy uses ("Bad Gateway").
std::string_view status_text(int status) noexcept;

// HTTP status for the outcome of a stream: ok 200, denied 403, timeout 504, bad_request
// 400, everything else (refused, unreachable, dns, no agent, ...) 502.
int status_for(nl::errc e) noexcept;

}  // namespace nl::proto::http
