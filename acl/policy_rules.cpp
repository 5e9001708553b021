// Building rules (acl/policy.hpp, sections 4 and 5): add_condition and rule_builder
// check one condition at a time with a message that says how to fix it, and
// parse_rule_spec reads the one-line rule text of --allow/--deny and tokens.
#include "acl/policy.hpp"

#include "acl/policy_internal.hpp"
#include "common/units.hpp"

#include <algorithm>
#include <array>

namespace nl::acl {

using namespace detail;

namespace {

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

}  // namespace

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
