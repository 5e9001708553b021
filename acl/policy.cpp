#include "acl/policy.hpp"
#include "proto/token.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>

#include <date/tz.h>
#include <nlohmann/json.hpp>

namespace nl::acl {
namespace {

namespace ip = boost::asio::ip;
using json = nlohmann::json;

constexpr std::uint16_t minutes_per_day = 24 * 60;
constexpr std::uint8_t all_days = 0x7f;
constexpr std::size_t max_policy_json = 64 * 1024;
constexpr int max_policy_json_depth = 8;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

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

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Lower-case, one trailing dot removed: the form names are compared in.
std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  return lower(name);
}

// Token names and groups: 1..64 of [A-Za-z0-9._-] (proto/token.hpp's alphabet; not
// called from there so that the fuzzers need not build proto/token.cpp).
bool valid_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' ||
           c == '-';
  });
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

constexpr std::array<std::string_view, 8> condition_keys{"cidr", "domain", "ports", "protocol",
                                                         "days", "hours",  "tz",    "client"};

std::string unknown_condition(std::string_view key) {
  std::string msg = "unknown condition '" + std::string(key) + "'; ";
  std::string_view best;
  std::size_t best_d = 3;  // suggest only near misses ("port", "domains", "proto")
  auto l = lower(key);
  for (auto k : condition_keys) {
    auto d = edit_distance(l, k);
    if (d < best_d || (k.size() >= 4 && l.starts_with(k.substr(0, 4)) && d < 5)) {
      best = k;
      best_d = std::min(d, best_d);
    }
  }
  if (l == "time" || l == "times" || l == "hour" || l == "from" || l == "until") {
    best = "hours";
  } else if (l == "zone" || l == "timezone" || l == "time_zone") {
    best = "tz";
  } else if (l == "day" || l == "weekdays") {
    best = "days";
  } else if (l == "group" || l == "groups" || l == "user" || l == "who") {
    best = "client";
  }
  if (!best.empty()) {
    msg += "did you mean '" + std::string(best) + "'? ";
  }
  msg += "(a rule's conditions are cidr, domain, ports, protocol, days, hours, tz and client)";
  return msg;
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

bool is_utc(std::string_view tz) { return tz.empty() || tz == "UTC"; }

const date::time_zone* find_zone(std::string_view tz) {
  if (!plausible_zone_name(tz)) {
    return nullptr;
  }
  try {
    return date::locate_zone(tz);
  } catch (const std::exception&) {
    return nullptr;  // unknown name, or no tz database on this system
  }
}

std::string zone_suggestion(std::string_view tz) {
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

// ---------------------------------------------------------------------------------------
// Days and hours.
constexpr std::array<std::string_view, 7> day_names{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
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

// "8", "08", "8:30", "08:30", "24:00" -> minutes.
std::optional<unsigned> parse_clock(std::string_view s) {
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

std::string clock_to_string(unsigned minutes) {
  char buf[8];
  auto h = minutes / 60;
  auto m = minutes % 60;
  buf[0] = static_cast<char>('0' + h / 10);
  buf[1] = static_cast<char>('0' + h % 10);
  buf[2] = ':';
  buf[3] = static_cast<char>('0' + m / 10);
  buf[4] = static_cast<char>('0' + m % 10);
  return std::string(buf, 5);
}

// A window that can match some instant.
bool window_can_match(const time_window& w) {
  return w.days != 0 && w.start_minute < minutes_per_day && w.start_minute != w.end_minute;
}

// The windows of a rule grouped by (days, tz), first-seen order: one rule-text each.
struct time_group {
  std::uint8_t days = all_days;
  std::string tz;
  std::vector<std::pair<std::uint16_t, std::uint16_t>> hours;
};

std::vector<time_group> group_windows(const rule& r, bool only_matchable) {
  std::vector<time_group> out;
  for (const auto& w : r.times) {
    if (only_matchable && !window_can_match(w)) {
      continue;
    }
    std::string tz = is_utc(w.tz) ? "UTC" : w.tz;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const time_group& g) { return g.days == w.days && g.tz == tz; });
    if (it == out.end()) {
      out.push_back({w.days, tz, {}});
      it = std::prev(out.end());
    }
    auto end = std::min<std::uint16_t>(w.end_minute, minutes_per_day);
    it->hours.emplace_back(w.start_minute, end);
  }
  return out;
}

// The days / hours / tz parts of one group, as (key, value) pairs: what both the rule
// text and describe() show. Omitted: days for every day, hours for the whole day, tz for
// UTC; but never all of days and hours (tz alone is refused when parsed).
std::vector<std::pair<std::string_view, std::string>> time_parts(const time_group& g) {
  std::vector<std::pair<std::string_view, std::string>> out;
  bool whole_day = g.hours.size() == 1 && g.hours[0].first == 0 && g.hours[0].second == minutes_per_day;
  if (g.days != all_days || whole_day) {
    out.emplace_back("days", days_to_string(g.days));
  }
  if (!whole_day) {
    std::string h;
    for (const auto& [s, e] : g.hours) {
      h += (h.empty() ? "" : ",") + hours_to_string(s, e);
    }
    out.emplace_back("hours", h);
  }
  if (g.tz != "UTC") {
    out.emplace_back("tz", g.tz);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Matching.
struct context {
  std::string_view name;      // normalized; "" = no name (a literal)
  const ip::address* addr;    // unmapped; null in the name phase
  const query& q;
};

bool times_match(const rule& r, std::chrono::system_clock::time_point now) {
  return std::any_of(r.times.begin(), r.times.end(), [&](const time_window& w) {
    auto in = in_window(w, now);
    // A zone that cannot be found fails closed: deny rules hold, allow rules do not.
    return in ? *in : r.act == action::deny;
  });
}

// `skip_cidrs`: judge the other conditions only (the name phase's "could this hold").
bool rule_matches(const rule& r, const context& c, bool skip_cidrs) {
  if (r.protocol && *r.protocol != c.q.protocol) {
    return false;
  }
  if (!r.ports.empty() && std::none_of(r.ports.begin(), r.ports.end(), [&](const port_range& pr) {
        return c.q.port >= pr.first && c.q.port <= pr.last;
      })) {
    return false;
  }
  if (!r.domains.empty()) {
    if (c.name.empty() || std::none_of(r.domains.begin(), r.domains.end(), [&](const std::string& d) {
          return domain_matches(d, c.name);
        })) {
      return false;
    }
  }
  if (!r.cidrs.empty() && !skip_cidrs) {
    if (c.addr == nullptr ||
        std::none_of(r.cidrs.begin(), r.cidrs.end(), [&](const cidr& x) { return contains(x, *c.addr); })) {
      return false;
    }
  }
  if (!r.clients.empty() && std::none_of(r.clients.begin(), r.clients.end(), [&](const std::string& cl) {
        return client_matches(cl, c.q);
      })) {
    return false;
  }
  if (!r.times.empty() && !times_match(r, c.q.now)) {
    return false;
  }
  return true;
}

std::string default_reason(action a) {
  return a == action::deny ? "default deny" : "default allow";
}

constexpr std::string_view invalid_name_reason = "invalid host name";


}  // namespace

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

bool contains(const cidr& c, const ip::address& raw) {
  auto a = unmap(raw);
  if (a.is_v4() != c.network.is_v4()) {
    return false;
  }
  if (a.is_v4()) {
    std::uint32_t mask = c.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - c.prefix);
    return (a.to_v4().to_uint() & mask) == c.network.to_v4().to_uint();
  }
  auto x = a.to_v6().to_bytes();
  auto n = c.network.to_v6().to_bytes();
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = c.prefix > i * 8 ? std::min(8u, c.prefix - i * 8) : 0;
    auto mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
    if ((x[i] & mask) != n[i]) {
      return false;
    }
  }
  return true;
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

bool domain_matches(std::string_view pattern, std::string_view raw_name) {
  std::string name = normalize_name(raw_name);
  if (pattern.starts_with("*.")) {
    auto suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.ends_with(suffix) &&
           name[name.size() - suffix.size() - 1] != '.';
  }
  return name == pattern;
}

std::optional<bool> in_window(const time_window& w, std::chrono::system_clock::time_point now) {
  if (!window_can_match(w)) {
    return false;
  }
  unsigned start = w.start_minute;
  unsigned end = std::min<unsigned>(w.end_minute, minutes_per_day);
  auto secs = date::floor<std::chrono::seconds>(now);
  date::local_seconds local;
  if (is_utc(w.tz)) {
    local = date::local_seconds{secs.time_since_epoch()};
  } else {
    const auto* zone = find_zone(w.tz);
    if (zone == nullptr) {
      return std::nullopt;
    }
    try {
      local = zone->to_local(secs);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  auto day = date::floor<date::days>(local);
  unsigned weekday = date::weekday{day}.iso_encoding() - 1;  // 0 = Monday
  auto minute = static_cast<unsigned>(date::floor<std::chrono::minutes>(local - day).count());
  auto on = [&](unsigned d) { return ((w.days >> d) & 1u) != 0; };
  if (start < end) {
    return on(weekday) && minute >= start && minute < end;
  }
  // Crosses midnight: the evening part on a listed day, the morning part on the day after.
  return (on(weekday) && minute >= start) || (on((weekday + 6) % 7) && minute < end);
}

bool client_matches(std::string_view condition, const query& q) {
  if (q.client.empty()) {
    return false;
  }
  if (condition.starts_with("group:")) {
    auto g = condition.substr(6);
    return std::any_of(q.groups.begin(), q.groups.end(), [&](const std::string& x) { return x == g; });
  }
  return condition == q.client;
}

// ---------------------------------------------------------------------------------------
// Building rules.

std::string add_condition(rule& r, std::string_view key, std::string_view raw_value) {
  auto value = trim(raw_value);
  std::string v(value);
  if (key == "cidr") {
    auto c = parse_cidr(value);
    if (!c) {
      if (parse_ip_literal(value)) {
        return "'" + v + "' is an address in an unusual form; write it in dotted decimal (" +
               parse_ip_literal(value)->to_string() + ") or as a CIDR like 10.0.0.0/8";
      }
      return "'" + v + "' is not an address or CIDR; write e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8";
    }
    r.cidrs.push_back(*c);
    return "";
  }
  if (key == "domain") {
    auto d = normalize_domain_pattern(value);
    if (!d) {
      std::string body = normalize_name(value);
      if (body.starts_with("*.")) {
        body.erase(0, 2);
      }
      if (parse_ip_literal(body)) {
        return "'" + v + "' is an address, not a domain; put it under cidr instead";
      }
      return "'" + v + "' is not a domain name or pattern; write e.g. nas.home or *.lan "
             "('*.' only at the start)";
    }
    r.domains.push_back(*d);
    return "";
  }
  if (key == "ports") {
    auto p = parse_ports(value);
    if (!p) {
      return "'" + v + "' is not a port list; write ports 1-65535 and ranges like 22,80-443";
    }
    r.ports.insert(r.ports.end(), p->begin(), p->end());
    return "";
  }
  if (key == "protocol") {
    auto p = parse_protocol(value);
    if (!p) {
      return "'" + v + "' is not a protocol; write tcp or udp (leave it out for both)";
    }
    if (r.protocol && *r.protocol != *p) {
      return "protocol given twice; write one of tcp or udp, or leave it out for both";
    }
    r.protocol = p;
    return "";
  }
  if (key == "client") {
    auto c = normalize_client(value);
    if (!c) {
      return "'" + v + "' is not a client; write a token name like alice or group:NAME (1-64 of "
             "letters, digits, '.', '_', '-')";
    }
    if (std::find(r.clients.begin(), r.clients.end(), *c) == r.clients.end()) {
      r.clients.push_back(*c);
    }
    return "";
  }
  if (key == "days" || key == "hours" || key == "tz") {
    return "'" + std::string(key) + "' combines with the other time keys: build the rule with rule_builder";
  }
  return unknown_condition(key);
}

std::string rule_builder::add(std::string_view key, std::string_view raw_value) {
  auto value = trim(raw_value);
  std::string v(value);
  if (key == "days") {
    auto d = parse_days(value);
    if (!d) {
      return "'" + v + "' is not a list of days; write e.g. mon-fri,sun (days mon tue wed thu fri "
             "sat sun; a range may wrap, as fri-mon)";
    }
    days_ = static_cast<std::uint8_t>(days_ | *d);
    return "";
  }
  if (key == "hours") {
    if (value.empty()) {
      return "'hours' is empty; write e.g. 08:00-18:00 or 22:00-06:00";
    }
    while (true) {
      auto comma = value.find(',');
      auto item = trim(value.substr(0, comma));
      auto h = parse_hours(item);
      if (!h) {
        std::string msg = "'" + std::string(item) + "' is not an hours range; write HH:MM-HH:MM, e.g. "
                          "08:00-18:00, or 22:00-06:00 to cross midnight (24:00 may end a range)";
        auto dash = item.find('-');
        if (dash != std::string_view::npos && parse_clock(item.substr(0, dash)) &&
            parse_clock(item.substr(0, dash)) == parse_clock(item.substr(dash + 1))) {
          msg = "'" + std::string(item) + "' is an empty range; for the whole day write 00:00-24:00 "
                "(or leave hours out)";
        }
        return msg;
      }
      hours_.push_back(*h);
      if (comma == std::string_view::npos) {
        break;
      }
      value.remove_prefix(comma + 1);
    }
    return "";
  }
  if (key == "tz") {
    if (!tz_.empty() && tz_ != v) {
      return "tz given twice ('" + tz_ + "' and '" + v + "'); a rule has one time zone: split it "
             "into two rules";
    }
    if (!valid_time_zone(value)) {
      std::string msg = "'" + v + "' is not a time zone known here (system tz database, "
                        "/usr/share/zoneinfo); write an IANA name like Europe/Berlin, "
                        "America/New_York or UTC";
      if (auto s = zone_suggestion(value); !s.empty()) {
        msg = "'" + v + "' is not a time zone known here; did you mean '" + s + "'?";
      }
      return msg;
    }
    tz_ = v;
    return "";
  }
  return add_condition(r_, key, value);
}

std::expected<rule, std::string> rule_builder::finish() const {
  rule r = r_;
  if (!tz_.empty() && days_ == 0 && hours_.empty()) {
    return std::unexpected("tz=" + tz_ + " alone changes nothing; add days and/or hours (e.g. "
                           "hours=08:00-18:00), or remove tz");
  }
  if (days_ != 0 || !hours_.empty()) {
    auto hours = hours_;
    if (hours.empty()) {
      hours.emplace_back(0, minutes_per_day);
    }
    for (const auto& [s, e] : hours) {
      time_window w;
      w.days = days_ != 0 ? days_ : all_days;
      w.start_minute = s;
      w.end_minute = e;
      w.tz = tz_.empty() ? "UTC" : tz_;
      if (std::find(r.times.begin(), r.times.end(), w) == r.times.end()) {
        r.times.push_back(w);
      }
    }
  }
  return r;
}

std::expected<rule, std::string> parse_rule_spec(std::string_view spec, action act) {
  rule_builder b(act);
  auto s = trim(spec);
  if (s.empty()) {
    return std::unexpected(std::string(
        "empty rule; write conditions like cidr=10.0.0.0/8;ports=22 (or 'any' to match everything)"));
  }
  if (s != "any") {
    std::vector<std::string> seen;
    while (!s.empty()) {
      auto semi = s.find(';');
      auto item = trim(s.substr(0, semi));
      s = semi == std::string_view::npos ? std::string_view{} : s.substr(semi + 1);
      if (item.empty()) {
        continue;  // tolerate "cidr=...;" and ";;"
      }
      auto eq = item.find('=');
      if (eq == std::string_view::npos) {
        return std::unexpected("'" + std::string(item) +
                               "' is not key=value; write e.g. cidr=10.0.0.0/8;ports=22 "
                               "(keys: cidr, domain, ports, protocol, days, hours, tz, client)");
      }
      auto key = lower(trim(item.substr(0, eq)));
      auto value = trim(item.substr(eq + 1));
      auto example = [&]() -> std::string_view {
        if (key == "domain") return "*.lan,nas.home";
        if (key == "ports") return "22,80-443";
        if (key == "protocol") return "tcp";
        if (key == "days") return "mon-fri,sun";
        if (key == "hours") return "08:00-12:00,13:00-18:00";
        if (key == "tz") return "Europe/Berlin";
        if (key == "client") return "alice,group:ops";
        return "10.0.0.0/8,fd00::/8";
      };
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return std::unexpected("'" + key + "' given twice; list several values in one, e.g. " + key + "=" +
                               std::string(example()));
      }
      seen.push_back(key);
      if (value.empty()) {
        return std::unexpected("'" + key + "=' has no value; write e.g. " + key + "=" + std::string(example()));
      }
      if (key == "cidr" || key == "domain" || key == "client") {
        // One condition value each, comma-separated.
        while (true) {
          auto comma = value.find(',');
          if (auto err = b.add(key, value.substr(0, comma)); !err.empty()) {
            return std::unexpected(err);
          }
          if (comma == std::string_view::npos) {
            break;
          }
          value.remove_prefix(comma + 1);
        }
        continue;
      }
      if (auto err = b.add(key, value); !err.empty()) {
        return std::unexpected(err);
      }
    }
  }
  auto r = b.finish();
  if (r) {
    r->label = "command-line rule (" + describe(*r) + ")";
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// Readable forms.

std::string_view to_string(action a) noexcept {
  return a == action::allow ? "allow" : "deny";
}

std::string to_string(const cidr& c) {
  return c.network.to_string() + "/" + std::to_string(c.prefix);
}

std::string to_string(const std::vector<port_range>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (!out.empty()) {
      out += ',';
    }
    out += std::to_string(p.first);
    if (p.last != p.first) {
      out += '-' + std::to_string(p.last);
    }
  }
  return out;
}

std::string days_to_string(std::uint8_t days) {
  std::string out;
  unsigned d = 0;
  while (d < 7) {
    if (((days >> d) & 1u) == 0) {
      ++d;
      continue;
    }
    unsigned last = d;
    while (last + 1 < 7 && ((days >> (last + 1)) & 1u) != 0) {
      ++last;
    }
    if (!out.empty()) {
      out += ',';
    }
    out += day_names[d];
    if (last != d) {
      out += '-';
      out += day_names[last];
    }
    d = last + 1;
  }
  return out;
}

std::string hours_to_string(std::uint16_t start, std::uint16_t end) {
  return clock_to_string(std::min<unsigned>(start, minutes_per_day)) + "-" +
         clock_to_string(std::min<unsigned>(end, minutes_per_day));
}

namespace {

// Conditions other than time, as (key, value) pairs in the rule-text order.
std::vector<std::pair<std::string_view, std::string>> plain_parts(const rule& r) {
  std::vector<std::pair<std::string_view, std::string>> out;
  auto join = [](const auto& items, auto&& fmt) {
    std::string s;
    for (const auto& i : items) {
      s += (s.empty() ? "" : ",") + fmt(i);
    }
    return s;
  };
  if (!r.cidrs.empty()) {
    out.emplace_back("cidr", join(r.cidrs, [](const cidr& c) { return to_string(c); }));
  }
  if (!r.domains.empty()) {
    out.emplace_back("domain", join(r.domains, [](const std::string& d) { return d; }));
  }
  if (!r.ports.empty()) {
    out.emplace_back("ports", to_string(r.ports));
  }
  if (r.protocol) {
    out.emplace_back("protocol", *r.protocol == proto::transport_protocol::udp ? "udp" : "tcp");
  }
  return out;
}

std::string client_part(const rule& r) {
  std::string s;
  for (const auto& c : r.clients) {
    s += (s.empty() ? "" : ",") + c;
  }
  return s;
}

}  // namespace

std::string describe(const rule& r) {
  std::string out(to_string(r.act));
  bool any = true;
  for (const auto& [k, v] : plain_parts(r)) {
    out += " " + std::string(k) + " " + v;
    any = false;
  }
  bool first_group = true;
  for (const auto& g : group_windows(r, false)) {
    if (!first_group) {
      out += " or";
    }
    first_group = false;
    for (const auto& [k, v] : time_parts(g)) {
      out += " " + std::string(k) + " " + v;
    }
    any = false;
  }
  if (!r.clients.empty()) {
    out += " client " + client_part(r);
    any = false;
  }
  if (any) {
    out += " any";
  }
  return out;
}

std::vector<std::string> to_specs(const rule& r) {
  std::string base;
  for (const auto& [k, v] : plain_parts(r)) {
    base += (base.empty() ? "" : ";") + std::string(k) + "=" + v;
  }
  std::string clients = r.clients.empty() ? "" : "client=" + client_part(r);
  auto assemble = [&](const std::string& times) {
    std::string s = base;
    for (const std::string* part : {&times, static_cast<const std::string*>(&clients)}) {
      if (!part->empty()) {
        s += (s.empty() ? "" : ";") + *part;
      }
    }
    return s.empty() ? std::string("any") : s;
  };
  if (r.times.empty()) {
    return {assemble("")};
  }
  std::vector<std::string> out;
  for (const auto& g : group_windows(r, true)) {
    std::string times;
    for (const auto& [k, v] : time_parts(g)) {
      times += (times.empty() ? "" : ";") + std::string(k) + "=" + v;
    }
    out.push_back(assemble(times));
  }
  return out;  // empty: no window can match, so neither can the rule
}

// ---------------------------------------------------------------------------------------
// JSON (the token's "pol" claim).

std::expected<policy, std::string> policy_from_json(std::string_view text) {
  auto fail = [](std::string m) { return std::unexpected(std::move(m)); };
  if (text.size() > max_policy_json) {
    return fail("policy is larger than 64 KiB");
  }
  if (!proto::token::json_within_depth(text, max_policy_json_depth)) {
    return fail("policy JSON is nested too deeply; write {\"default\":\"deny\",\"rules\":[{\"allow\":\"...\"}]}");
  }
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail("policy is not a JSON object; write {\"default\":\"deny\",\"rules\":[{\"allow\":\"cidr=10.0.0.0/8\"}]}");
  }
  policy p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "default") {
      if (!value.is_string() || (value != "allow" && value != "deny")) {
        return fail("policy \"default\" must be \"allow\" or \"deny\"");
      }
      p.default_action = value == "allow" ? action::allow : action::deny;
    } else if (key != "rules") {
      return fail("unknown policy key \"" + key + "\"; a policy has \"default\" and \"rules\"");
    }
  }
  auto rules = j.find("rules");
  if (rules == j.end() || rules->is_null()) {
    return p;
  }
  if (!rules->is_array()) {
    return fail("policy \"rules\" must be a list like [{\"allow\":\"cidr=10.0.0.0/8\"},{\"deny\":\"ports=25\"}]");
  }
  int index = 0;
  for (const auto& item : *rules) {
    ++index;
    std::string where = "rule " + std::to_string(index);
    if (!item.is_object() || item.size() != 1) {
      return fail(where + " must be an object with one key, allow or deny, e.g. {\"deny\":\"ports=25\"}");
    }
    auto first = item.begin();
    const std::string& key = first.key();
    const json& value = first.value();
    if (key != "allow" && key != "deny") {
      return fail(where + " starts with \"" + key + "\"; use allow or deny");
    }
    if (!value.is_string()) {
      return fail(where + " (" + key + "): the rule must be text like \"cidr=10.0.0.0/8;ports=22\"");
    }
    const auto& spec = value.get_ref<const std::string&>();
    auto r = parse_rule_spec(spec, key == "allow" ? action::allow : action::deny);
    if (!r) {
      return fail(where + " (" + key + " '" + spec + "'): " + r.error());
    }
    r->label = "token policy " + where + " (" + describe(*r) + ")";
    p.rules.push_back(std::move(*r));
  }
  return p;
}

std::string policy_to_json(const policy& p) {
  json rules = json::array();
  for (const auto& r : p.rules) {
    for (const auto& spec : to_specs(r)) {
      rules.push_back(json::object({{std::string(to_string(r.act)), spec}}));
    }
  }
  json j = json::object();
  j["default"] = std::string(to_string(p.default_action));
  j["rules"] = std::move(rules);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------
// Evaluation.

decision check_address(const policy& p, const query& q, const ip::address& a) {
  std::string name;
  if (!q.host.empty() && !parse_ip_literal(q.host)) {
    if (!valid_dns_name(q.host)) {
      return {action::deny, std::string(invalid_name_reason)};
    }
    name = normalize_name(q.host);
  }
  auto addr = unmap(a);
  context c{name, &addr, q};
  for (const auto& r : p.rules) {
    if (r.act == action::deny && rule_matches(r, c, false)) {
      return {action::deny, r.label};
    }
  }
  for (const auto& r : p.rules) {
    if (r.act == action::allow && rule_matches(r, c, false)) {
      return {action::allow, r.label};
    }
  }
  return {p.default_action, default_reason(p.default_action)};
}

std::optional<decision> check_name(const policy& p, const query& q) {
  if (q.host.empty()) {
    return std::nullopt;  // nothing to judge before an address exists
  }
  if (auto literal = parse_ip_literal(q.host)) {
    auto d = check_address(p, q, *literal);
    if (d.act == action::deny) {
      return d;
    }
    return std::nullopt;
  }
  if (!valid_dns_name(q.host)) {
    return decision{action::deny, std::string(invalid_name_reason)};
  }
  auto name = normalize_name(q.host);
  context c{name, nullptr, q};
  for (const auto& r : p.rules) {
    if (r.act == action::deny && r.cidrs.empty() && rule_matches(r, c, false)) {
      return decision{action::deny, r.label};
    }
  }
  if (p.default_action == action::deny &&
      std::none_of(p.rules.begin(), p.rules.end(),
                   [&](const rule& r) { return r.act == action::allow && rule_matches(r, c, true); })) {
    return decision{action::deny, default_reason(action::deny)};
  }
  return std::nullopt;
}

std::optional<decision> check_name(const policy& p, std::string_view host, std::uint16_t port,
                                   proto::transport_protocol proto) {
  query q;
  q.host = host;
  q.port = port;
  q.protocol = proto;
  q.now = std::chrono::system_clock::now();
  return check_name(p, q);
}

decision check_address(const policy& p, std::string_view host, const ip::address& a, std::uint16_t port,
                       proto::transport_protocol proto) {
  query q;
  q.host = host;
  q.port = port;
  q.protocol = proto;
  q.now = std::chrono::system_clock::now();
  return check_address(p, q, a);
}

}  // namespace nl::acl
