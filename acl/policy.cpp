#include "acl/policy.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace nl::acl {
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

constexpr std::array<std::string_view, 4> condition_keys{"cidr", "domain", "ports", "protocol"};

std::string unknown_condition(std::string_view key) {
  std::string msg = "unknown condition '" + std::string(key) + "'; ";
  std::string_view best;
  std::size_t best_d = 3;  // suggest only near misses ("port", "domains", "proto")
  for (auto k : condition_keys) {
    auto d = edit_distance(lower(key), k);
    if (d < best_d || (lower(key).starts_with(k.substr(0, 4)) && d < 5)) {
      best = k;
      best_d = std::min(d, best_d);
    }
  }
  if (!best.empty()) {
    msg += "did you mean '" + std::string(best) + "'? ";
  }
  msg += "(a rule's conditions are cidr, domain, ports and protocol)";
  return msg;
}

// The match of one rule. `a` is null in the name phase (cidrs are then not consulted:
// callers skip rules with cidrs there). `name` is already normalized; "" = no name.
bool rule_matches(const rule& r, std::string_view name, const ip::address* a, std::uint16_t port,
                  proto::transport_protocol proto) {
  if (r.protocol && *r.protocol != proto) {
    return false;
  }
  if (!r.ports.empty() &&
      std::none_of(r.ports.begin(), r.ports.end(),
                   [&](const port_range& pr) { return port >= pr.first && port <= pr.last; })) {
    return false;
  }
  if (!r.domains.empty()) {
    if (name.empty() || std::none_of(r.domains.begin(), r.domains.end(), [&](const std::string& d) {
          return domain_matches(d, name);
        })) {
      return false;
    }
  }
  if (!r.cidrs.empty()) {
    if (a == nullptr ||
        std::none_of(r.cidrs.begin(), r.cidrs.end(), [&](const cidr& c) { return contains(c, *a); })) {
      return false;
    }
  }
  return true;
}

std::string default_reason(action a) {
  return a == action::deny ? "default deny" : "default allow";
}

}  // namespace

ip::address unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
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

std::optional<std::vector<port_range>> parse_ports(std::string_view s) {
  std::vector<port_range> out;
  if (trim(s).empty()) {
    return std::nullopt;
  }
  while (true) {
    auto comma = s.find(',');
    auto item = trim(s.substr(0, comma));
    auto dash = item.find('-');
    auto first = parse_small_uint(trim(item.substr(0, dash)), 5);
    auto last = dash == std::string_view::npos ? first : parse_small_uint(trim(item.substr(dash + 1)), 5);
    if (!first || !last || *first == 0 || *last > 65535 || *first > *last) {
      return std::nullopt;
    }
    out.push_back({static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)});
    if (comma == std::string_view::npos) {
      break;
    }
    s.remove_prefix(comma + 1);
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
  // An address written as a domain would never match a name: make the user say cidr.
  boost::system::error_code ec;
  (void)ip::make_address(std::string(body), ec);
  if (!ec) {
    return std::nullopt;
  }
  std::size_t label_len = 0;
  for (char c : body) {
    if (c == '.') {
      if (label_len == 0) {
        return std::nullopt;
      }
      label_len = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label_len > 63) {
      return std::nullopt;
    }
  }
  if (label_len == 0) {
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

bool domain_matches(std::string_view pattern, std::string_view raw_name) {
  std::string name = normalize_name(raw_name);
  if (pattern.starts_with("*.")) {
    auto suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.ends_with(suffix) &&
           name[name.size() - suffix.size() - 1] != '.';
  }
  return name == pattern;
}

std::string add_condition(rule& r, std::string_view key, std::string_view raw_value) {
  auto value = trim(raw_value);
  std::string v(value);
  if (key == "cidr") {
    auto c = parse_cidr(value);
    if (!c) {
      return "'" + v + "' is not an address or CIDR; write e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8";
    }
    r.cidrs.push_back(*c);
    return "";
  }
  if (key == "domain") {
    auto d = normalize_domain_pattern(value);
    if (!d) {
      boost::system::error_code ec;
      (void)ip::make_address(v, ec);
      if (!ec) {
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
  return unknown_condition(key);
}

std::expected<rule, std::string> parse_rule_spec(std::string_view spec, action act) {
  rule r;
  r.act = act;
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
                               "(keys: cidr, domain, ports, protocol)");
      }
      auto key = lower(trim(item.substr(0, eq)));
      auto value = trim(item.substr(eq + 1));
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return std::unexpected("'" + key + "' given twice; list several values in one, e.g. " + key +
                               (key == "domain" ? "=*.lan,nas.home" : key == "ports" ? "=22,80-443"
                                                                                      : "=10.0.0.0/8,fd00::/8"));
      }
      seen.push_back(key);
      if (value.empty()) {
        return std::unexpected("'" + key + "=' has no value; write e.g. " + key +
                               (key == "domain" ? "=*.lan" : key == "ports" ? "=22" : key == "protocol" ? "=tcp" : "=10.0.0.0/8"));
      }
      if (key == "ports" || key == "protocol") {
        if (auto err = add_condition(r, key, value); !err.empty()) {
          return std::unexpected(err);
        }
        continue;
      }
      // cidr and domain take a comma-separated list, one condition value each.
      while (true) {
        auto comma = value.find(',');
        if (auto err = add_condition(r, key, value.substr(0, comma)); !err.empty()) {
          return std::unexpected(err);
        }
        if (comma == std::string_view::npos) {
          break;
        }
        value.remove_prefix(comma + 1);
      }
    }
  }
  r.label = "command-line rule (" + describe(r) + ")";
  return r;
}

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

std::string describe(const rule& r) {
  std::string out(to_string(r.act));
  auto join = [&](std::string_view what, const auto& items, auto&& fmt) {
    if (items.empty()) {
      return;
    }
    out += ' ';
    out += what;
    char sep = ' ';
    for (const auto& i : items) {
      out += sep;
      out += fmt(i);
      sep = ',';
    }
  };
  join("cidr", r.cidrs, [](const cidr& c) { return to_string(c); });
  join("domain", r.domains, [](const std::string& d) { return d; });
  if (!r.ports.empty()) {
    out += " ports " + to_string(r.ports);
  }
  if (r.protocol) {
    out += *r.protocol == proto::transport_protocol::tcp ? " protocol tcp" : " protocol udp";
  }
  if (r.cidrs.empty() && r.domains.empty() && r.ports.empty() && !r.protocol) {
    out += " any";
  }
  return out;
}

std::optional<decision> check_name(const policy& p, std::string_view host, std::uint16_t port,
                                   proto::transport_protocol proto) {
  auto name = normalize_name(host);
  for (const auto& r : p.rules) {
    if (r.act == action::deny && r.cidrs.empty() && rule_matches(r, name, nullptr, port, proto)) {
      return decision{action::deny, r.label};
    }
  }
  return std::nullopt;
}

decision check_address(const policy& p, std::string_view host, const ip::address& a,
                       std::uint16_t port, proto::transport_protocol proto) {
  auto name = normalize_name(host);
  auto addr = unmap(a);
  for (const auto& r : p.rules) {
    if (r.act == action::deny && rule_matches(r, name, &addr, port, proto)) {
      return {action::deny, r.label};
    }
  }
  for (const auto& r : p.rules) {
    if (r.act == action::allow && rule_matches(r, name, &addr, port, proto)) {
      return {action::allow, r.label};
    }
  }
  return {p.default_action, default_reason(p.default_action)};
}

}  // namespace nl::acl
