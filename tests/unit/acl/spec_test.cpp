// Rule text with the time and client keys, rule_builder, to_specs, and the token
// policy's JSON form (policy_from_json / policy_to_json).
#include <catch2/catch.hpp>

#include "acl/policy.hpp"
#include "builders.hpp"

namespace {

using acl_test::rule_of;
using nl::acl::action;
using namespace std::chrono;

}  // namespace

TEST_CASE("rule text: time and client keys", "[acl][spec]") {
  auto r = rule_of("days=mon-fri;hours=08:00-12:00,13:00-18:00;tz=Europe/Berlin;client=alice,group:ops",
                   action::allow);
  REQUIRE(r.times.size() == 2);
  CHECK(r.times[0] == nl::acl::time_window{0x1f, 480, 720, "Europe/Berlin"});
  CHECK(r.times[1] == nl::acl::time_window{0x1f, 780, 1080, "Europe/Berlin"});
  CHECK(r.clients == std::vector<std::string>{"alice", "group:ops"});
  CHECK(nl::acl::describe(r) ==
        "allow days mon-fri hours 08:00-12:00,13:00-18:00 tz Europe/Berlin client alice,group:ops");

  // Key order does not matter; days alone = whole days; hours alone = every day.
  CHECK(rule_of("tz=Asia/Tokyo;hours=9-17", action::allow).times ==
        std::vector<nl::acl::time_window>{{0x7f, 540, 1020, "Asia/Tokyo"}});
  CHECK(rule_of("days=sat,sun", action::deny).times ==
        std::vector<nl::acl::time_window>{{0x60, 0, 1440, "UTC"}});
  CHECK(nl::acl::describe(rule_of("days=sat,sun", action::deny)) == "deny days sat-sun");
  CHECK(nl::acl::describe(rule_of("hours=22:00-06:00", action::deny)) == "deny hours 22:00-06:00");
  CHECK(nl::acl::describe(rule_of("cidr=10.0.0.0/8;client=bob", action::allow)) ==
        "allow cidr 10.0.0.0/8 client bob");

  struct bad {
    std::string_view spec;
    std::string_view says;
  };
  const bad cases[] = {
      {"days=weekdays", "is not a list of days"},
      {"days=mon;days=tue", "'days' given twice"},
      {"hours=08:00", "is not an hours range"},
      {"hours=08:00-08:00", "empty range"},
      {"hours=24:00-06:00", "is not an hours range"},
      {"tz=Europe/Berlin", "alone changes nothing"},
      {"hours=8-9;tz=Europe/Berln", "did you mean 'Europe/Berlin'?"},
      {"hours=8-9;tz=europe/berlin", "did you mean 'Europe/Berlin'?"},
      {"hours=8-9;tz=Mars/Olympus_Mons", "not a time zone known here"},
      {"hours=8-9;tz=../../etc/passwd", "not a time zone known here"},
      {"client=", "has no value"},
      {"client=al ice", "is not a client"},
      {"client=group:", "is not a client"},
      {"client=role:admin", "is not a client"},
      {"clients=alice", "did you mean 'client'?"},
      {"group=ops", "did you mean 'client'?"},
      {"time=8-9", "did you mean 'hours'?"},
      {"timezone=UTC", "did you mean 'tz'?"},
      {"domain=0x7f.1", "put it under cidr"},
      {"domain=127.1", "put it under cidr"},
      {"cidr=0x7f.1", "write it in dotted decimal (127.0.0.1)"},
  };
  for (const auto& b : cases) {
    INFO(b.spec);
    auto e = nl::acl::parse_rule_spec(b.spec, action::allow);
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error(), Catch::Contains(std::string(b.says)));
  }
}

TEST_CASE("rule_builder accumulates like the YAML lists", "[acl][spec]") {
  nl::acl::rule_builder b(action::deny);
  CHECK(b.add("days", "mon").empty());
  CHECK(b.add("days", "wed-thu").empty());
  CHECK(b.add("hours", "01:00-02:00").empty());
  CHECK(b.add("hours", "03:00-04:00,05:00-06:00").empty());
  CHECK(b.add("tz", "Europe/Paris").empty());
  CHECK(b.add("tz", "Europe/Paris").empty());  // the same zone again is harmless
  CHECK_THAT(b.add("tz", "UTC"), Catch::Contains("tz given twice"));
  CHECK(b.add("client", "group:ops").empty());
  CHECK(b.add("cidr", "10.0.0.0/8").empty());
  auto r = b.finish();
  REQUIRE(r);
  CHECK(r->act == action::deny);
  REQUIRE(r->times.size() == 3);
  for (const auto& w : r->times) {
    CHECK(w.days == 0x0d);
    CHECK(w.tz == "Europe/Paris");
  }
  CHECK(nl::acl::to_specs(*r) == std::vector<std::string>{
                                     "cidr=10.0.0.0/8;days=mon,wed-thu;hours=01:00-02:00,03:00-04:00,"
                                     "05:00-06:00;tz=Europe/Paris;client=group:ops"});
}

TEST_CASE("to_specs: parse_rule_spec's inverse", "[acl][spec]") {
  const std::string_view specs[] = {
      "any",
      "cidr=10.0.0.0/8,fd00::/8;ports=22,80-443;protocol=tcp",
      "domain=*.lan,nas.home;protocol=udp",
      "days=mon-fri;hours=08:00-18:00;tz=Europe/Berlin",
      "hours=22:00-06:00",
      "days=sat-sun",
      "ports=22;days=fri;hours=22:00-06:00;tz=America/New_York;client=alice,group:ops",
      "client=bob",
  };
  for (auto s : specs) {
    INFO(s);
    auto r = rule_of(s, action::allow);
    auto out = nl::acl::to_specs(r);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == s);
  }
  SECTION("windows with different days or zones become several texts") {
    nl::acl::rule r;
    r.times = {{0x01, 60, 120, "UTC"}, {0x02, 60, 120, "Europe/Berlin"}, {0x01, 180, 240, "UTC"}};
    CHECK(nl::acl::to_specs(r) ==
          std::vector<std::string>{"days=mon;hours=01:00-02:00,03:00-04:00", "days=tue;hours=01:00-02:00;tz=Europe/Berlin"});
  }
  SECTION("a rule that can never match has no text; all day every day says so") {
    nl::acl::rule r;
    r.times = {{0, 0, 1440, "UTC"}};
    CHECK(nl::acl::to_specs(r).empty());
    r.times = {{0x7f, 0, 1440, "Asia/Tokyo"}};
    CHECK(nl::acl::to_specs(r) == std::vector<std::string>{"days=mon-sun;tz=Asia/Tokyo"});
  }
}

TEST_CASE("policy JSON: parse, errors, round trip", "[acl][json]") {
  auto p = nl::acl::policy_from_json(
      R"({"default":"deny","rules":[{"allow":"cidr=10.0.0.0/8;ports=22"},{"deny":"domain=*.corp"}]})");
  REQUIRE(p);
  CHECK(p->default_action == action::deny);
  REQUIRE(p->rules.size() == 2);
  CHECK(p->rules[0].act == action::allow);
  CHECK(p->rules[0].label == "token policy rule 1 (allow cidr 10.0.0.0/8 ports 22)");
  CHECK(p->rules[1].label == "token policy rule 2 (deny domain *.corp)");
  CHECK(nl::acl::policy_to_json(*p) ==
        R"({"default":"deny","rules":[{"allow":"cidr=10.0.0.0/8;ports=22"},{"deny":"domain=*.corp"}]})");

  SECTION("defaults: no rules, no default") {
    auto e = nl::acl::policy_from_json("{}");
    REQUIRE(e);
    CHECK(e->default_action == action::deny);
    CHECK(e->rules.empty());
    auto a = nl::acl::policy_from_json(R"({"default":"allow"})");
    REQUIRE(a);
    CHECK(a->default_action == action::allow);
    CHECK(nl::acl::policy_to_json(*a) == R"({"default":"allow","rules":[]})");
  }

  SECTION("round trip keeps every decision") {
    const char* text =
        R"({"default":"allow","rules":[{"deny":"cidr=127.0.0.0/8,::1/128"},)"
        R"({"allow":"days=mon-fri;hours=08:00-18:00;tz=Europe/Berlin;client=group:ops"},)"
        R"({"deny":"domain=*.ads.example,tracker.example;protocol=tcp"},)"
        R"({"deny":"ports=22;days=fri;hours=22:00-06:00;client=mallory"}]})";
    auto a = nl::acl::policy_from_json(text);
    REQUIRE(a);
    auto b = nl::acl::policy_from_json(nl::acl::policy_to_json(*a));
    REQUIRE(b);
    CHECK(nl::acl::policy_to_json(*b) == nl::acl::policy_to_json(*a));
    CHECK(nl::acl::policy_to_json(*a) == text);
    REQUIRE(a->rules.size() == b->rules.size());
    for (std::size_t i = 0; i < a->rules.size(); ++i) {
      CHECK(nl::acl::describe(a->rules[i]) == nl::acl::describe(b->rules[i]));
      CHECK(a->rules[i].times == b->rules[i].times);
      CHECK(a->rules[i].clients == b->rules[i].clients);
    }
  }

  SECTION("errors name the rule") {
    struct bad {
      std::string_view json;
      std::string_view says;
    };
    const bad cases[] = {
        {"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {R"({"default":"maybe"})", "\"default\" must be \"allow\" or \"deny\""},
        {R"({"default":"deny","extra":1})", "unknown policy key \"extra\""},
        {R"({"rules":{"allow":"any"}})", "\"rules\" must be a list"},
        {R"({"rules":[{"allow":"any","deny":"any"}]})", "rule 1 must be an object with one key"},
        {R"({"rules":[{"allow":"any"},{"permit":"any"}]})", "rule 2 starts with \"permit\""},
        {R"({"rules":[{"allow":22}]})", "rule 1 (allow): the rule must be text"},
        {R"({"rules":[{"allow":"any"},{"deny":"domain=a..b"}]})", "rule 2 (deny 'domain=a..b'): 'a..b' is not a domain"},
        {R"({"rules":[{"deny":"hours=8-9;tz=Nowhere/Else"}]})", "rule 1 (deny 'hours=8-9;tz=Nowhere/Else')"},
        {R"({"rules":[[[[[[[[[[]]]]]]]]]]})", "nested too deeply"},
    };
    for (const auto& c : cases) {
      INFO(c.json);
      auto e = nl::acl::policy_from_json(c.json);
      REQUIRE_FALSE(e);
      CHECK_THAT(e.error(), Catch::Contains(std::string(c.says)));
    }
  }

  SECTION("a hand-built policy with mixed windows splits into equivalent rules") {
    nl::acl::policy hand;
    nl::acl::rule r;
    r.act = action::allow;
    r.ports = {{22, 22}};
    r.times = {{0x01, 0, 60, "UTC"}, {0x40, 0, 60, "Europe/Berlin"}};
    hand.rules.push_back(r);
    auto back = nl::acl::policy_from_json(nl::acl::policy_to_json(hand));
    REQUIRE(back);
    REQUIRE(back->rules.size() == 2);
    for (auto when : {sys_days{year{2026} / 1 / 19} + minutes{30},       // Mon 00:30 UTC
                      sys_days{year{2026} / 1 / 17} + minutes{23 * 60 + 30},  // Sun 00:30 CET
                      sys_days{year{2026} / 1 / 20} + minutes{30}}) {    // Tue
      nl::acl::query q;
      q.port = 22;
      q.now = when;
      auto addr = boost::asio::ip::make_address("192.0.2.1");
      CHECK(nl::acl::check_address(hand, q, addr).act == nl::acl::check_address(*back, q, addr).act);
    }
  }
}
