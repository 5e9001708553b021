#include "acl/policy.hpp"

#include "acl/policy_internal.hpp"
#include "proto/token.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

// Rules and policies as text: to_string, describe(), the rule specs and the JSON of
// the token's "pol" claim.

namespace nl::acl {

using namespace detail;

namespace {

using json = nlohmann::json;

constexpr std::size_t max_policy_json = 64 * 1024;
constexpr int max_policy_json_depth = 8;

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
}  // namespace

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

}  // namespace nl::acl
