#include "acl/policy.hpp"

#include "acl/policy_internal.hpp"
#include "common/units.hpp"
#include "proto/token.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>

#include <date/tz.h>

namespace nl::acl {

using namespace detail;

namespace {

namespace ip = boost::asio::ip;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Digits only (no sign, no spaces), at most `max_digits`, so "+1" and "1e3" are refused.
std::optional<unsigned> parse_small_uint(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) {
    return std::nullopt;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// Token names and groups: 1..64 of [A-Za-z0-9._-] (proto/token.hpp's alphabet; not
// called from there so that the fuzzers need not build proto/token.cpp).
bool valid_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' ||
           c == '-';
  });
}

// ---------------------------------------------------------------------------------------
// IP literals, the way glibc's inet_aton_exact reads them (getaddrinfo's numeric path).
std::optional<ip::address_v4> parse_ipv4_any_form(std::string_view s) {
  std::array<std::uint32_t, 3> parts{};
  std::size_t n = 0;
  std::size_t i = 0;
  while (true) {
    if (i >= s.size() || !is_digit(s[i])) {
      return std::nullopt;  // empty part, sign, space, trailing dot, ...
    }
    unsigned base = 10;
    if (s[i] == '0') {
      base = 8;  // a lone "0" parses as octal 0 as well
      if (i + 2 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex_digit(s[i + 2])) {
        base = 16;
        i += 2;
      }
    }
    std::uint64_t v = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      unsigned d = 0;
      if (is_digit(c)) {
        d = static_cast<unsigned>(c - '0');
      } else if (base == 16 && c >= 'a' && c <= 'f') {
        d = static_cast<unsigned>(c - 'a' + 10);
      } else if (base == 16 && c >= 'A' && c <= 'F') {
        d = static_cast<unsigned>(c - 'A' + 10);
      } else {
        break;
      }
      if (d >= base) {
        break;  // "08": strtoul stops at '8', which then is trailing garbage
      }
      v = v * base + d;
      if (v > 0xffffffffu) {
        return std::nullopt;
      }
    }
    if (i == s.size()) {
      static constexpr std::array<std::uint32_t, 4> max_last{0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
      if (v > max_last[n]) {
        return std::nullopt;
      }
      std::uint32_t addr = static_cast<std::uint32_t>(v);
      for (std::size_t k = 0; k < n; ++k) {
        addr |= parts[k] << (24 - 8 * k);
      }
      return ip::address_v4(addr);
    }
    if (s[i] != '.' || n == 3 || v > 0xff) {
      return std::nullopt;
    }
    parts[n++] = static_cast<std::uint32_t>(v);
    ++i;
  }
}

// ---------------------------------------------------------------------------------------
// Time zones.
bool plausible_zone_name(std::string_view tz) {
  if (tz.empty() || tz.size() > 64 || tz.front() == '/' || tz.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(tz.begin(), tz.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '/' || c == '_' ||
           c == '+' || c == '-';
  });
}

// ---------------------------------------------------------------------------------------
// Days and hours.
constexpr std::array<std::string_view, 7> long_day_names{"monday", "tuesday",  "wednesday", "thursday",
                                                         "friday", "saturday", "sunday"};

std::optional<unsigned> parse_day(std::string_view s) {
  auto l = lower(trim(s));
  for (unsigned i = 0; i < 7; ++i) {
    if (l == day_names[i] || l == long_day_names[i]) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view detail::trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string detail::lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::optional<unsigned> detail::parse_clock(std::string_view s) {
  s = trim(s);
  auto colon = s.find(':');
  auto h = parse_small_uint(s.substr(0, colon), 2);
  unsigned m = 0;
  if (colon != std::string_view::npos) {
    auto mm = s.substr(colon + 1);
    auto mv = mm.size() == 2 ? parse_small_uint(mm, 2) : std::nullopt;
    if (!mv || *mv > 59) {
      return std::nullopt;
    }
    m = *mv;
  }
  if (!h || *h > 24 || (*h == 24 && m != 0)) {
    return std::nullopt;
  }
  return *h * 60 + m;
}

std::string detail::zone_suggestion(std::string_view tz) {
  std::string best;
  if (tz.empty() || tz.size() > 64) {
    return best;  // nothing that long is a near miss (and the search is quadratic)
  }
  try {
    std::size_t best_d = 4;
    auto l = lower(tz);
    for (const auto& z : date::get_tzdb().zones) {
      auto name = z.name();
      if (name.starts_with("posix/") || name.starts_with("right/")) {
        continue;
      }
      auto d = lower(name) == l ? 0 : edit_distance(l, lower(name));
      if (d < best_d) {
        best = name;
        best_d = d;
      }
    }
  } catch (const std::exception&) {
    return "";
  }
  return best;
}

std::string detail::normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  return lower(name);
}

bool detail::is_utc(std::string_view tz) { return tz.empty() || tz == "UTC"; }

const date::time_zone* detail::find_zone(std::string_view tz) {
  if (!plausible_zone_name(tz)) {
    return nullptr;
  }
  try {
    return date::locate_zone(tz);
  } catch (const std::exception&) {
    return nullptr;  // unknown name, or no tz database on this system
  }
}

// ---------------------------------------------------------------------------------------
// Parse helpers.

ip::address unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::optional<ip::address> parse_ip_literal(std::string_view host) {
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find(':') != std::string_view::npos) {
    if (host.find('%') != std::string_view::npos || host.size() > 64) {
      return std::nullopt;
    }
    boost::system::error_code ec;
    auto a6 = ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return std::nullopt;
    }
    return unmap(ip::address(a6));
  }
  if (bracketed) {
    return std::nullopt;  // brackets hold IPv6 only
  }
  auto a4 = parse_ipv4_any_form(host);
  if (!a4) {
    return std::nullopt;
  }
  return ip::address(*a4);
}

bool valid_dns_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  if (name.empty() || name.size() > 253) {
    return false;
  }
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) {
        return false;
      }
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
    if (!ok || ++label > 63) {
      return false;
    }
  }
  return label != 0;
}

std::optional<cidr> parse_cidr(std::string_view s) {
  auto slash = s.find('/');
  auto addr_text = s.substr(0, slash);
  // Zone ids ("fe80::1%eth0") name an interface of one host, which a policy cannot mean.
  if (addr_text.empty() || addr_text.find('%') != std::string_view::npos) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto addr = ip::make_address(std::string(addr_text), ec);
  if (ec) {
    return std::nullopt;
  }
  unsigned max_prefix = addr.is_v4() ? 32 : 128;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto p = parse_small_uint(s.substr(slash + 1), 3);
    if (!p || *p > max_prefix) {
      return std::nullopt;
    }
    prefix = *p;
  }
  // A mapped range (::ffff:10.0.0.0/104) is an IPv4 range: store it as one so that the
  // comparison with unmapped addresses is uniform.
  if (addr.is_v6() && addr.to_v6().is_v4_mapped() && prefix >= 96) {
    addr = unmap(addr);
    prefix -= 96;
  }
  cidr c;
  c.prefix = prefix;
  if (addr.is_v4()) {
    std::uint32_t v = addr.to_v4().to_uint();
    std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    c.network = ip::address_v4(v & mask);
  } else {
    auto bytes = addr.to_v6().to_bytes();
    for (unsigned i = 0; i < 16; ++i) {
      unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0;
      auto mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
      bytes[i] &= mask;
    }
    c.network = ip::address_v6(bytes);
  }
  return c;
}

namespace {

// Calls on_item(first, last) for each comma-separated item "x" or "x-y" of `s`, both parts
// trimmed (for "x", last == first). False when `s` is blank or on_item refuses an item.
// The shared list syntax of ports ("22,80-443") and days ("mon-fri,sun").
template <class F>
bool for_each_range_item(std::string_view s, F&& on_item) {
  if (trim(s).empty()) {
    return false;
  }
  while (true) {
    auto comma = s.find(',');
    auto item = trim(s.substr(0, comma));
    auto dash = item.find('-');
    auto first = trim(item.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : trim(item.substr(dash + 1));
    if (!on_item(first, last)) {
      return false;
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    s.remove_prefix(comma + 1);
  }
}

}  // namespace

std::optional<std::vector<port_range>> parse_ports(std::string_view s) {
  std::vector<port_range> out;
  bool ok = for_each_range_item(s, [&](std::string_view a, std::string_view b) {
    auto first = parse_small_uint(a, 5);
    auto last = parse_small_uint(b, 5);
    if (!first || !last || *first == 0 || *last > 65535 || *first > *last) {
      return false;
    }
    out.push_back({static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)});
    return true;
  });
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> normalize_domain_pattern(std::string_view s) {
  std::string p = normalize_name(s);
  std::string_view body = p;
  if (body.starts_with("*.")) {
    body.remove_prefix(2);
  }
  if (body.empty() || body.size() > 253) {
    return std::nullopt;
  }
  // An address written as a domain would never match a name (a literal has no name):
  // make the user say cidr. Odd forms count ("127.1", "0x7f.1", "2130706433").
  if (parse_ip_literal(body)) {
    return std::nullopt;
  }
  if (!valid_dns_name(body) || body.back() == '.') {
    return std::nullopt;
  }
  return p;
}

std::optional<proto::transport_protocol> parse_protocol(std::string_view s) {
  auto l = lower(s);
  if (l == "tcp") {
    return proto::transport_protocol::tcp;
  }
  if (l == "udp") {
    return proto::transport_protocol::udp;
  }
  return std::nullopt;
}

std::optional<std::uint8_t> parse_days(std::string_view s) {
  std::uint8_t mask = 0;
  bool ok = for_each_range_item(s, [&](std::string_view a, std::string_view b) {
    auto first = parse_day(a);
    auto last = parse_day(b);
    if (!first || !last) {
      return false;
    }
    // Ranges wrap: fri-mon = fri, sat, sun, mon.
    for (unsigned d = *first;; d = (d + 1) % 7) {
      mask = static_cast<std::uint8_t>(mask | (1u << d));
      if (d == *last) {
        break;
      }
    }
    return true;
  });
  if (!ok) {
    return std::nullopt;
  }
  return mask;
}

std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_hours(std::string_view s) {
  s = trim(s);
  auto dash = s.find('-');
  if (dash == std::string_view::npos || s.find('-', dash + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  auto start = parse_clock(s.substr(0, dash));
  auto end = parse_clock(s.substr(dash + 1));
  if (!start || !end || *start >= minutes_per_day) {
    return std::nullopt;  // 24:00 only ends a range
  }
  if (*start == *end) {
    return std::nullopt;  // empty (or, meant as "all day", ambiguous): say 00:00-24:00
  }
  if (*end == 0) {
    end = minutes_per_day;  // "22:00-00:00" = until midnight
  }
  return std::pair{static_cast<std::uint16_t>(*start), static_cast<std::uint16_t>(*end)};
}

bool valid_time_zone(std::string_view tz) {
  return tz == "UTC" || find_zone(tz) != nullptr;
}

std::optional<std::string> normalize_client(std::string_view s) {
  s = trim(s);
  auto id = s.starts_with("group:") ? s.substr(6) : s;
  if (!valid_identifier(id)) {
    return std::nullopt;
  }
  return std::string(s);
}

}  // namespace nl::acl
