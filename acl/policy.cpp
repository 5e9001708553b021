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

// Token names and groups: 1..64 of [A-Za-z0-9._-] (proto/token.hpp's alphabet; not
// called from there so that the fuzzers need not build proto/token.cpp).
bool valid_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' ||
           c == '-';
  });
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

}  // namespace

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

}  // namespace nl::acl
