// Time windows: days, hours, named zones, windows crossing midnight, DST changes.
// Instants are written in UTC; the comments give the local wall-clock time.
#include <catch2/catch.hpp>

#include "acl/policy.hpp"
#include "builders.hpp"

namespace {

using acl_test::make_policy;
using nl::acl::action;
using namespace std::chrono;

// "2026-03-29 01:30" (UTC) -> time point.
system_clock::time_point utc(std::string_view s) {
  auto num = [&](std::size_t pos, std::size_t len) {
    return std::stoi(std::string(s.substr(pos, len)));
  };
  auto day = sys_days{year{num(0, 4)} / month{static_cast<unsigned>(num(5, 2))} /
                      std::chrono::day{static_cast<unsigned>(num(8, 2))}};
  return day + hours{num(11, 2)} + minutes{num(14, 2)};
}

struct time_case {
  std::string_view when;  // UTC
  std::uint16_t port;
  action expected;
  std::string_view reason;
};

void run_table(const nl::acl::policy& p, std::span<const time_case> cases) {
  for (const auto& c : cases) {
    nl::acl::query q;
    q.port = c.port;
    q.now = utc(c.when);
    auto d = nl::acl::check_address(p, q, boost::asio::ip::make_address("10.0.0.1"));
    INFO(c.when << " UTC port " << c.port << " -> " << d.reason);
    CHECK(d.act == c.expected);
    CHECK(d.reason == c.reason);
  }
}

}  // namespace

TEST_CASE("office hours in Europe/Berlin, and a Friday-night window", "[acl][time]") {
  const auto p = make_policy({
      {action::allow, "days=mon-fri;hours=08:00-18:00;tz=Europe/Berlin"},          // r1
      {action::deny, "days=fri;hours=22:00-06:00;tz=Europe/Berlin;ports=22"},      // r2
      {action::allow, "ports=22"},                                                 // r3
  });
  // clang-format off
  const time_case table[] = {
      {"2026-01-14 07:30", 80, action::allow, "r1"},           // Wed 08:30 CET
      {"2026-01-14 06:59", 80, action::deny, "default deny"},  // Wed 07:59 CET
      {"2026-07-15 06:30", 80, action::allow, "r1"},           // Wed 08:30 CEST (UTC+2)
      {"2026-07-15 05:30", 80, action::deny, "default deny"},  // Wed 07:30 CEST
      {"2026-07-15 16:30", 80, action::deny, "default deny"},  // Wed 18:30 CEST
      {"2026-01-14 16:59", 80, action::allow, "r1"},           // Wed 17:59 CET: end exclusive
      {"2026-01-14 17:00", 80, action::deny, "default deny"},  // Wed 18:00 CET
      {"2026-01-17 10:00", 80, action::deny, "default deny"},  // Sat 11:00 CET
      {"2026-01-19 07:00", 80, action::allow, "r1"},           // Mon 08:00 CET: start inclusive
      {"2026-01-16 21:30", 22, action::deny, "r2"},            // Fri 22:30 CET
      {"2026-01-16 20:59", 22, action::allow, "r3"},           // Fri 21:59 CET
      {"2026-01-16 23:00", 22, action::deny, "r2"},            // Sat 00:00 CET: crossed midnight
      {"2026-01-17 04:59", 22, action::deny, "r2"},            // Sat 05:59 CET
      {"2026-01-17 05:00", 22, action::allow, "r3"},           // Sat 06:00 CET
      {"2026-01-15 21:30", 22, action::allow, "r3"},           // Thu 22:30: not a Friday
      {"2026-01-16 04:00", 22, action::allow, "r3"},           // Fri 05:00: Thursday's night
      {"2026-01-17 21:30", 22, action::allow, "r3"},           // Sat 22:30
      {"2026-01-16 21:30", 80, action::deny, "default deny"},  // Fri 22:30, port 80: no rule
  };
  // clang-format on
  run_table(p, table);
}

TEST_CASE("a Saturday-night window across both DST changes in Europe/Berlin", "[acl][time][dst]") {
  const auto p = make_policy({
      {action::deny, "days=sat;hours=22:00-06:00;tz=Europe/Berlin"},  // r1
      {action::allow, "any"},                                         // r2
  });
  // clang-format off
  const time_case cases[] = {
      // spring forward: Sun 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC)
      {"2026-03-28 20:59", 80, action::allow, "r2"},  // Sat 21:59 CET
      {"2026-03-28 21:00", 80, action::deny, "r1"},   // Sat 22:00 CET
      {"2026-03-29 00:59", 80, action::deny, "r1"},   // Sun 01:59 CET
      {"2026-03-29 01:00", 80, action::deny, "r1"},   // Sun 03:00 CEST
      {"2026-03-29 03:59", 80, action::deny, "r1"},   // Sun 05:59 CEST
      {"2026-03-29 04:00", 80, action::allow, "r2"},  // Sun 06:00 CEST (a fixed +1 would say 05:00)
      // fall back: Sun 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC)
      {"2026-10-24 19:59", 80, action::allow, "r2"},  // Sat 21:59 CEST
      {"2026-10-24 20:00", 80, action::deny, "r1"},   // Sat 22:00 CEST
      {"2026-10-25 04:59", 80, action::deny, "r1"},   // Sun 05:59 CET
      {"2026-10-25 05:00", 80, action::allow, "r2"},  // Sun 06:00 CET
      {"2026-10-25 20:59", 80, action::allow, "r2"},  // Sun 21:59 CET: Sunday is not listed
  };
  // clang-format on
  run_table(p, cases);
}

TEST_CASE("the repeated and the skipped hour", "[acl][time][dst]") {
  const auto p = make_policy({{action::allow, "days=sun;hours=02:00-03:00;tz=Europe/Berlin"}});
  // clang-format off
  const time_case cases[] = {
      {"2026-10-25 00:30", 80, action::allow, "r1"},           // 02:30 CEST
      {"2026-10-25 01:30", 80, action::allow, "r1"},           // 02:30 CET: the hour again
      {"2026-10-25 02:00", 80, action::deny, "default deny"},  // 03:00 CET
      {"2026-10-24 23:59", 80, action::deny, "default deny"},  // 01:59 CEST
      {"2026-03-29 00:59", 80, action::deny, "default deny"},  // 01:59 CET
      {"2026-03-29 01:00", 80, action::deny, "default deny"},  // 03:00 CEST: 02:xx never happens
  };
  // clang-format on
  run_table(p, cases);
}

TEST_CASE("America/New_York, UTC by default, Sunday night into Monday", "[acl][time]") {
  SECTION("New York office hours across its own DST start (2026-03-08)") {
    const auto p = make_policy({{action::allow, "hours=09:00-17:00;tz=America/New_York"}});
    const time_case cases[] = {
        {"2026-03-06 14:00", 80, action::allow, "r1"},           // Fri 09:00 EST (UTC-5)
        {"2026-03-06 13:59", 80, action::deny, "default deny"},  // Fri 08:59 EST
        {"2026-03-09 13:00", 80, action::allow, "r1"},           // Mon 09:00 EDT (UTC-4)
        {"2026-03-09 21:00", 80, action::deny, "default deny"},  // Mon 17:00 EDT
        {"2026-03-09 20:59", 80, action::allow, "r1"},           // Mon 16:59 EDT
    };
    run_table(p, cases);
  }
  SECTION("no tz means UTC; 22:00-02:00 every day") {
    const auto p = make_policy({{action::allow, "hours=22:00-02:00"}});
    REQUIRE(p.rules[0].times.size() == 1);
    CHECK(p.rules[0].times[0].tz == "UTC");
    const time_case cases[] = {
        {"2026-01-01 21:59", 80, action::deny, "default deny"},
        {"2026-01-01 22:00", 80, action::allow, "r1"},
        {"2026-01-02 01:59", 80, action::allow, "r1"},
        {"2026-01-02 02:00", 80, action::deny, "default deny"},
    };
    run_table(p, cases);
  }
  SECTION("a Sunday window reaching into Monday; days that wrap") {
    const auto p = make_policy({{action::allow, "days=sun;hours=22:00-02:00"},
                                {action::allow, "days=fri-mon;hours=12:00-13:00;ports=8080"}});
    const time_case cases[] = {
        {"2026-01-19 01:00", 80, action::allow, "r1"},           // Mon 01:00: Sunday's night
        {"2026-01-18 01:00", 80, action::deny, "default deny"},  // Sun 01:00: Saturday's night
        {"2026-01-18 22:30", 80, action::allow, "r1"},           // Sun 22:30
        {"2026-01-19 12:30", 8080, action::allow, "r2"},         // Mon
        {"2026-01-18 12:30", 8080, action::allow, "r2"},         // Sun
        {"2026-01-20 12:30", 8080, action::deny, "default deny"},  // Tue
        {"2026-01-16 12:30", 8080, action::allow, "r2"},         // Fri
    };
    run_table(p, cases);
  }
  SECTION("several hour ranges; 24:00 ends the day") {
    const auto p = make_policy({{action::allow, "hours=08:00-12:00,13:00-24:00"}});
    const time_case cases[] = {
        {"2026-01-01 12:30", 80, action::deny, "default deny"},
        {"2026-01-01 11:59", 80, action::allow, "r1"},
        {"2026-01-01 23:59", 80, action::allow, "r1"},
        {"2026-01-02 00:00", 80, action::deny, "default deny"},
    };
    run_table(p, cases);
  }
}

TEST_CASE("time windows in the name phase and a zone that vanished", "[acl][time]") {
  auto p = make_policy({{action::deny, "days=sat-sun;domain=*.work.example"}});
  auto q = nl::acl::query{"git.work.example", 22, nl::proto::transport_protocol::tcp, {}, {}, utc("2026-01-17 12:00")};
  auto d = nl::acl::check_name(p, q);
  REQUIRE(d);
  CHECK(d->reason == "r1");

  SECTION("an unknown zone fails closed: holds for deny, fails for allow") {
    nl::acl::policy hand;
    nl::acl::rule deny_rule;
    deny_rule.act = action::deny;
    deny_rule.label = "deny";
    deny_rule.times.push_back({0x7f, 0, 1440, "Nowhere/Atlantis"});
    nl::acl::rule allow_rule;
    allow_rule.label = "allow";
    allow_rule.times.push_back({0x7f, 0, 1440, "Nowhere/Atlantis"});
    CHECK_FALSE(nl::acl::in_window(deny_rule.times[0], q.now).has_value());
    hand.rules = {allow_rule};
    hand.default_action = action::deny;
    CHECK(nl::acl::check_address(hand, q, boost::asio::ip::make_address("10.0.0.1")).reason == "default deny");
    hand.rules = {deny_rule};
    hand.default_action = action::allow;
    CHECK(nl::acl::check_address(hand, q, boost::asio::ip::make_address("10.0.0.1")).reason == "deny");
  }
}

TEST_CASE("parse_days, parse_hours, time zones", "[acl][time]") {
  CHECK(nl::acl::parse_days("mon-fri") == 0x1f);
  CHECK(nl::acl::parse_days("sat,sun") == 0x60);
  CHECK(nl::acl::parse_days("fri-mon") == 0x71);  // fri sat sun mon
  CHECK(nl::acl::parse_days("Monday, SUN") == 0x41);
  CHECK(nl::acl::parse_days("wed-wed") == 0x04);
  CHECK(nl::acl::days_to_string(0x71) == "mon,fri-sun");
  CHECK(nl::acl::days_to_string(0x7f) == "mon-sun");
  CHECK(nl::acl::days_to_string(0x15) == "mon,wed,fri");
  for (std::string_view bad : {"", "mo", "mon-", "-fri", "mon,,fri", "weekday", "1-5", "mon;fri"}) {
    INFO(bad);
    CHECK_FALSE(nl::acl::parse_days(bad));
  }
  using hp = std::pair<std::uint16_t, std::uint16_t>;
  CHECK(nl::acl::parse_hours("08:00-18:00") == hp{480, 1080});
  CHECK(nl::acl::parse_hours("22:00-06:00") == hp{1320, 360});
  CHECK(nl::acl::parse_hours("8-18") == hp{480, 1080});
  CHECK(nl::acl::parse_hours("00:00-24:00") == hp{0, 1440});
  CHECK(nl::acl::parse_hours("22:30-00:00") == hp{1350, 1440});  // until midnight
  CHECK(nl::acl::hours_to_string(1320, 360) == "22:00-06:00");
  CHECK(nl::acl::hours_to_string(0, 1440) == "00:00-24:00");
  for (std::string_view bad : {"", "08:00", "08:00-08:00", "24:00-06:00", "08:60-09:00", "25:00-26:00",
                               "8:5-9", "08:00-18:00-20:00", "-18:00", "a-b", "24:30-01:00", "00:00-00:00"}) {
    INFO(bad);
    CHECK_FALSE(nl::acl::parse_hours(bad));
  }
  CHECK(nl::acl::valid_time_zone("UTC"));
  CHECK(nl::acl::valid_time_zone("Europe/Berlin"));
  CHECK(nl::acl::valid_time_zone("America/Argentina/Buenos_Aires"));
  CHECK_FALSE(nl::acl::valid_time_zone("Europe/Berln"));
  CHECK_FALSE(nl::acl::valid_time_zone("../../etc/passwd"));
  CHECK_FALSE(nl::acl::valid_time_zone("/etc/localtime"));
  CHECK_FALSE(nl::acl::valid_time_zone(""));
}
