// Small value syntaxes of the configuration: error text, forwards, gateway URLs, levels.
#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "proto/frame.hpp"

namespace nl::config {
namespace {

std::optional<unsigned> parse_port_number(std::string_view s) {
  if (s.empty() || s.size() > 5) {
    return std::nullopt;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) {
    return std::nullopt;
  }
  return v;
}

std::string bracket(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Splits on ':' outside square brackets; bracketed parts come back without brackets and
// with `bracketed` set so the caller can tell "[::1]" from a bare word.
struct part {
  std::string text;
  bool bracketed = false;
};
std::optional<std::vector<part>> split_colons(std::string_view s) {
  std::vector<part> out;
  std::size_t i = 0;
  while (true) {
    part p;
    if (i < s.size() && s[i] == '[') {
      auto close = s.find(']', i);
      if (close == std::string_view::npos) {
        return std::nullopt;
      }
      p.text = std::string(s.substr(i + 1, close - i - 1));
      p.bracketed = true;
      i = close + 1;
      if (i < s.size() && s[i] != ':') {
        return std::nullopt;  // "[::1]x"
      }
    } else {
      auto colon = s.find(':', i);
      auto end = colon == std::string_view::npos ? s.size() : colon;
      p.text = std::string(s.substr(i, end - i));
      if (p.text.find_first_of("[]") != std::string::npos) {
        return std::nullopt;
      }
      i = end;
    }
    out.push_back(std::move(p));
    if (i >= s.size()) {
      break;
    }
    ++i;  // the ':'
    if (i == s.size()) {
      out.push_back({});  // trailing ':' leaves an empty last field
      break;
    }
  }
  return out;
}

}  // namespace

std::string config_error::to_string() const {
  if (line > 0) {
    return file + ":" + std::to_string(line) + ": " + message;
  }
  return file + ": " + message;
}

std::string forward_spec::to_string() const {
  return bracket(bind) + ":" + std::to_string(port) + ":" + bracket(host) + ":" +
         std::to_string(host_port);
}

std::optional<forward_spec> parse_forward(std::string_view s) {
  auto parts = split_colons(s);
  if (!parts || (parts->size() != 3 && parts->size() != 4)) {
    return std::nullopt;
  }
  forward_spec f;
  std::size_t i = 0;
  if (parts->size() == 4) {
    const auto& b = (*parts)[i++];
    if (!b.bracketed && (b.text.empty() || b.text == "*")) {
      f.bind = "0.0.0.0";
    } else if (proto::valid_host(b.text)) {
      f.bind = b.text;
    } else {
      return std::nullopt;
    }
  }
  const auto& port = (*parts)[i++];
  const auto& host = (*parts)[i++];
  const auto& host_port = (*parts)[i++];
  auto p = parse_port_number(port.text);
  auto hp = parse_port_number(host_port.text);
  if (port.bracketed || host_port.bracketed || !p || !hp || *hp == 0) {
    return std::nullopt;
  }
  if (!proto::valid_host(host.text) || (host.bracketed && host.text.find(':') == std::string::npos)) {
    return std::nullopt;
  }
  f.port = static_cast<std::uint16_t>(*p);
  f.host = host.text;
  f.host_port = static_cast<std::uint16_t>(*hp);
  return f;
}

std::string gateway_url::to_string() const {
  std::string out = tls ? "wss://" : "ws://";
  out += bracket(host);
  if (port != (tls ? 443 : 80)) {
    out += ":" + std::to_string(port);
  }
  return out + prefix;
}

std::optional<gateway_url> parse_gateway_url(std::string_view s) {
  gateway_url u;
  auto starts_with_ci = [&](std::string_view prefix) {
    if (s.size() < prefix.size()) {
      return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      char c = s[i];
      if (c >= 'A' && c <= 'Z') {
        c = static_cast<char>(c - 'A' + 'a');
      }
      if (c != prefix[i]) {
        return false;
      }
    }
    return true;
  };
  if (starts_with_ci("wss://")) {
    s.remove_prefix(6);
  } else if (starts_with_ci("ws://")) {
    u.tls = false;
    u.port = 80;
    s.remove_prefix(5);
  } else {
    return std::nullopt;
  }
  if (s.find_first_of("?#@ \t") != std::string_view::npos) {
    return std::nullopt;
  }
  auto slash = s.find('/');
  auto authority = s.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : s.substr(slash);
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      port_text = rest.substr(1);
      if (port_text.empty()) {
        return std::nullopt;
      }
    }
  } else {
    auto colon = authority.find(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos) {
        return std::nullopt;  // an IPv6 literal needs brackets
      }
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        return std::nullopt;
      }
    }
    u.host = std::string(authority.substr(0, colon));
  }
  if (!proto::valid_host(u.host)) {
    return std::nullopt;
  }
  if (!port_text.empty()) {
    auto p = parse_port_number(port_text);
    if (!p || *p == 0) {
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(*p);
  }
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  for (unsigned char c : path) {
    if (c <= 0x20 || c >= 0x7f) {
      return std::nullopt;
    }
  }
  u.prefix = std::string(path);
  return u;
}

bool valid_public_key_text(std::string_view text) {
  // 32 bytes = 256 bits = 43 base64 characters of 6 bits, the last carrying 2 padding
  // bits that must be zero (a strict decoder refuses anything else).
  constexpr std::string_view prefix = "nl1:";
  constexpr std::string_view last_chars = "AEIMQUYcgkosw048";
  if (text.size() != prefix.size() + 43 || !text.starts_with(prefix)) {
    return false;
  }
  auto body = text.substr(prefix.size());
  bool alphabet = std::all_of(body.begin(), body.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  return alphabet && last_chars.find(body.back()) != std::string_view::npos;
}

bool valid_log_level(std::string_view level) {
  static constexpr std::array<std::string_view, 6> levels{"trace", "debug", "info",
                                                          "warn",  "error", "off"};
  for (auto l : levels) {
    if (l == level) {
      return true;
    }
  }
  return false;
}

}  // namespace nl::config
