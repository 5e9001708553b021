#include "proto/http_connect.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

#include <sodium.h>

#include "common/units.hpp"

namespace nl::proto::http {
namespace {

constexpr std::string_view crlf = "\r\n";
constexpr std::string_view terminator = "\r\n\r\n";

// RFC 9110 tchar: the characters of a method or header-name token.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "Basic <base64(user:pass)>" -> credentials; nullopt for anything else.
std::optional<basic_credentials> decode_basic(std::string_view value) {
  auto sp = value.find_first_of(" \t");
  if (sp == std::string_view::npos || !iequals(value.substr(0, sp), "Basic")) {
    return std::nullopt;
  }
  auto b64 = trim_ows(value.substr(sp));
  if (b64.empty()) {
    return std::nullopt;
  }
  std::vector<unsigned char> bin(b64.size());
  std::size_t bin_len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(bin.data(), bin.size(), b64.data(), b64.size(), nullptr, &bin_len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size()) {
    return std::nullopt;
  }
  std::string_view decoded(reinterpret_cast<const char*>(bin.data()), bin_len);
  auto colon = decoded.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  return basic_credentials{std::string(decoded.substr(0, colon)), std::string(decoded.substr(colon + 1))};
}

bool is_ipv6_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

head_result parse_request(std::string_view in) {
  head_result r;
  auto bad = [&](const char* why) {
    r.status = head_status::malformed;
    r.error = why;
    r.consumed = 0;
    return r;
  };
  auto end = in.substr(0, max_head_size).find(terminator);
  if (end == std::string_view::npos) {
    if (in.size() >= max_head_size) {
      return bad("request head too large");
    }
    return r;
  }
  r.consumed = end + terminator.size();
  auto head = in.substr(0, end);
  // CR and LF only as line ends, and no other control characters anywhere (HT is allowed
  // as whitespace): this also rules out NUL and bare-LF request smuggling tricks.
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto c = static_cast<unsigned char>(head[i]);
    if (c == '\r' && i + 1 < head.size() && head[i + 1] == '\n') {
      ++i;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return bad("control character in request head");
    }
  }

  auto eol = head.find(crlf);
  auto request_line = head.substr(0, eol);
  auto headers = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + crlf.size());

  // request-line = method SP request-target SP HTTP-version
  auto sp1 = request_line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad("malformed request line");
  }
  auto method = request_line.substr(0, sp1);
  auto target_text = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = request_line.substr(sp2 + 1);
  if (!is_token(method) || target_text.empty()) {
    return bad("malformed request line");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return bad("unsupported HTTP version");
  }

  bool seen_auth = false;
  while (!headers.empty()) {
    auto next = headers.find(crlf);
    auto line = headers.substr(0, next);
    headers = next == std::string_view::npos ? std::string_view{} : headers.substr(next + crlf.size());
    if (line.empty() || line.front() == ' ' || line.front() == '\t') {
      return bad("malformed header line");  // includes obsolete line folding
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return bad("malformed header line");
    }
    auto name = line.substr(0, colon);
    auto value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "Proxy-Authorization")) {
      if (seen_auth) {
        return bad("duplicate Proxy-Authorization header");
      }
      seen_auth = true;
      r.req.proxy_auth = decode_basic(value);
    }
  }

  r.req.method = std::string(method);
  r.req.version = std::string(version);
  if (method != "CONNECT") {
    r.status = head_status::method_not_allowed;
    r.error = "only CONNECT is supported";
    r.req.proxy_auth.reset();
    return r;
  }
  // authority-form: host:port or [v6]:port
  auto hp = nl::parse_host_port(target_text, /*allow_zero=*/false);
  if (!hp || !valid_host(hp->host) || (target_text.front() == '[' && !is_ipv6_literal(hp->host))) {
    return bad("CONNECT target is not host:port");
  }
  r.req.dest.host = std::move(hp->host);
  r.req.dest.port = hp->port;
  r.req.dest.protocol = transport_protocol::tcp;
  r.status = head_status::ok;
  return r;
}

head_result parse_request(std::span<const std::byte> in) {
  return parse_request(std::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
}

bool looks_like_http(std::byte first) noexcept {
  auto c = std::to_integer<unsigned char>(first);
  return c >= 'A' && c <= 'Z';
}

std::string_view status_text(int status) noexcept {
  switch (status) {
    case 200: return "Connection established";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string response(int status, std::string_view reason_text) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out += status_text(status);
  out += crlf;
  // A 2xx answer to CONNECT switches to tunnel mode: no Content-Length (RFC 9110 §9.3.6).
  if (status >= 200 && status < 300) {
    out += crlf;
    return out;
  }
  if (status == 407) {
    out += "Proxy-Authenticate: Basic realm=\"nl\"\r\n";
  }
  if (status == 405) {
    out += "Allow: CONNECT\r\n";
  }
  constexpr std::size_t max_reason = 256;
  std::string reason;
  for (char c : reason_text.substr(0, max_reason)) {
    auto u = static_cast<unsigned char>(c);
    reason += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  auto trimmed = trim_ows(reason);
  if (!trimmed.empty()) {
    out += "X-NL-Error: ";
    out += trimmed;
    out += crlf;
  }
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

int status_for(nl::errc e) noexcept {
  switch (e) {
    case errc::ok: return 200;
    case errc::denied: return 403;
    case errc::timeout: return 504;
    case errc::bad_request: return 400;
    default: return 502;  // refused, unreachable, dns failure, no agent, and the rest
  }
}

}  // namespace nl::proto::http
