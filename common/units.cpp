#include "common/units.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace nl {
namespace {

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) {
    return std::nullopt;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "<digits><unit>" with optional blanks around and between: the number and the unit text.
struct number_unit {
  std::uint64_t n;
  std::string_view unit;
};
std::optional<number_unit> split_number_unit(std::string_view s) {
  s = trim(s);
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  auto n = parse_uint(s.substr(0, i));
  if (!n) {
    return std::nullopt;
  }
  return number_unit{*n, trim(s.substr(i))};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto nu = split_number_unit(s);
  if (!nu) {
    return std::nullopt;
  }
  auto [n, unit] = *nu;
  std::uint64_t mul = 0;
  if (unit == "ms") mul = 1;
  else if (unit == "s" || unit.empty()) mul = 1000;
  else if (unit == "m" || unit == "min") mul = 60'000;
  else if (unit == "h") mul = 3'600'000;
  else if (unit == "d") mul = 86'400'000;
  else return std::nullopt;
  if (n > (std::uint64_t{1} << 40) / mul) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(n * mul);
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 86'400'000 == 0 && ms) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0 && ms) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  auto nu = split_number_unit(s);
  if (!nu) {
    return std::nullopt;
  }
  auto [n, unit] = *nu;
  std::uint64_t mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB" || unit == "KB") mul = 1024;
  else if (unit == "m" || unit == "M" || unit == "MiB" || unit == "MB") mul = 1024 * 1024;
  else if (unit == "g" || unit == "G" || unit == "GiB" || unit == "GB") mul = 1024ull * 1024 * 1024;
  else return std::nullopt;
  if (n > (std::uint64_t{1} << 50) / mul) {
    return std::nullopt;
  }
  return n * mul;
}

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::optional<host_port> parse_host_port(std::string_view s, bool allow_zero) {
  host_port hp;
  std::string_view port_part;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    hp.host = std::string(s.substr(1, close - 1));
    if (hp.host.empty()) {
      return std::nullopt;
    }
    port_part = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    if (s.substr(0, colon).find(':') != std::string_view::npos) {
      return std::nullopt;  // bare IPv6 without brackets is ambiguous
    }
    hp.host = std::string(s.substr(0, colon));
    port_part = s.substr(colon + 1);
  }
  auto p = parse_uint(port_part);
  if (!p || *p > 65535 || (!allow_zero && *p == 0)) {
    return std::nullopt;
  }
  hp.port = static_cast<std::uint16_t>(*p);
  for (char c : hp.host) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '@') {
      return std::nullopt;
    }
  }
  return hp;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace nl

