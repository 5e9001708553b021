// Runs the three config parsers and validate() on arbitrary YAML text: they must answer
// with a value or a config_error (with a message and a non-negative line), never crash,
// hang or throw. The first byte picks the program, the rest is the file.
// The same text also goes through the ACL's parsers (rule text, token policy JSON, IP
// literals) and, as a host name, through check_name/check_address of the policy an agent
// config produced, with these invariants: every policy the parsers accept survives
// policy_to_json -> policy_from_json unchanged; every rule's to_specs text parses back;
// check_name only ever denies; an IP literal normalises to a fixed point.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "acl/policy.hpp"
#include "config/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

template <class R>
void check(const R& r) {
  if (r) {
    (void)nl::config::validate(*r);
  } else {
    NL_FUZZ_CHECK(!r.error().message.empty() && r.error().line >= 0);
    (void)r.error().to_string();
  }
}

void check_round_trip(const nl::acl::policy& p) {
  auto text = nl::acl::policy_to_json(p);
  auto back = nl::acl::policy_from_json(text);
  NL_FUZZ_CHECK(back.has_value());
  NL_FUZZ_CHECK(nl::acl::policy_to_json(*back) == text);
}

void exercise_policy(const nl::acl::policy& p, std::string_view host, std::uint8_t salt) {
  check_round_trip(p);
  static const std::string groups[] = {"ops", "dev"};
  nl::acl::query q;
  q.host = host;
  q.port = static_cast<std::uint16_t>(salt * 257u);
  q.protocol = (salt & 1) != 0 ? nl::proto::transport_protocol::udp : nl::proto::transport_protocol::tcp;
  q.client = (salt & 2) != 0 ? "alice" : "";
  q.groups = groups;
  q.now = std::chrono::system_clock::time_point{} + std::chrono::hours{490'000 + salt * 37};
  if (auto d = nl::acl::check_name(p, q)) {
    NL_FUZZ_CHECK(d->act == nl::acl::action::deny && !d->reason.empty());
  }
  auto a = nl::acl::parse_ip_literal(host).value_or(boost::asio::ip::make_address("192.0.2.1"));
  NL_FUZZ_CHECK(!nl::acl::check_address(p, q, a).reason.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) {
    return 0;
  }
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: check(nl::config::parse_gateway(text, "fuzz.yaml")); break;
    case 1: {
      auto a = nl::config::parse_agent(text, "fuzz.yaml");
      check(a);
      if (a) {
        exercise_policy(a->policy, "nas.lan", data[0]);
      }
      break;
    }
    default: check(nl::config::parse_client(text, "fuzz.yaml")); break;
  }
  (void)nl::config::parse_forward(text);
  (void)nl::config::parse_gateway_url(text);
  (void)nl::config::valid_public_key_text(text);

  // ACL parsers on the same bytes.
  if (auto lit = nl::acl::parse_ip_literal(text)) {
    auto again = nl::acl::parse_ip_literal(lit->to_string());
    NL_FUZZ_CHECK(again && *again == *lit);
  }
  if (text.size() <= 4096) {
    if (auto r = nl::acl::parse_rule_spec(text, (data[0] & 4) != 0 ? nl::acl::action::deny : nl::acl::action::allow)) {
      for (const auto& spec : nl::acl::to_specs(*r)) {
        NL_FUZZ_CHECK(nl::acl::parse_rule_spec(spec, r->act).has_value());
      }
      nl::acl::policy p;
      p.rules.push_back(*r);
      exercise_policy(p, text, data[0]);
    }
  }
  if (auto p = nl::acl::policy_from_json(text)) {
    exercise_policy(*p, "db.internal.example", data[0]);
  }
  return 0;
}
