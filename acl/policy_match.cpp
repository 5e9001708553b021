#include "acl/policy.hpp"

#include "acl/policy_internal.hpp"

#include <algorithm>
#include <exception>

// Evaluation: does a rule match a query, and what does a policy decide.

namespace nl::acl {

using namespace detail;

namespace {

namespace ip = boost::asio::ip;

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

namespace {
query asked_now(std::string_view host, std::uint16_t port, proto::transport_protocol proto) {
  return query{.host = host, .port = port, .protocol = proto, .now = std::chrono::system_clock::now()};
}
}  // namespace

std::optional<decision> check_name(const policy& p, std::string_view host, std::uint16_t port,
                                   proto::transport_protocol proto) {
  return check_name(p, asked_now(host, port, proto));
}

decision check_address(const policy& p, std::string_view host, const ip::address& a, std::uint16_t port,
                       proto::transport_protocol proto) {
  return check_address(p, asked_now(host, port, proto), a);
}

}  // namespace nl::acl
