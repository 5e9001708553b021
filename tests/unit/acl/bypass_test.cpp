// The full ACL through the query API, table-driven: odd IP literal forms, IPv4-mapped
// IPv6, domain case/trailing-dot/wildcard tricks, names resolving to forbidden addresses
// (DNS rebinding), clients and groups, deny-beats-allow and the default. Each request
// is evaluated the way the agent does it (evaluate() below): literal -> check_address;
// name -> check_name, then "resolve" in a fake DNS table and check_address each address.
#include <map>

#include <catch2/catch.hpp>

#include "acl/policy.hpp"
#include "builders.hpp"

namespace {

using acl_test::make_policy;
using nl::acl::action;
using nl::proto::transport_protocol;
namespace ip = boost::asio::ip;

constexpr auto tcp = transport_protocol::tcp;
constexpr auto udp = transport_protocol::udp;

// Fake DNS: lower-case name without trailing dot -> addresses.
const std::map<std::string, std::vector<std::string>>& dns() {
  static const std::map<std::string, std::vector<std::string>> table{
      {"public.example", {"203.0.113.5"}},
      {"rebind.example", {"127.0.0.1"}},
      {"mapped.example", {"::ffff:127.0.0.1"}},
      {"mixed.example", {"127.0.0.1", "203.0.113.6", "169.254.169.254", "2001:db8::6"}},
      {"internal.corp", {"203.0.113.7"}},
      {"www.example.com", {"93.184.216.34"}},
      {"example.org", {"93.184.216.35"}},
      {"intranet.example.com", {"10.0.0.5"}},
      {"127.0.0.1", {"127.0.0.1"}},  // "127.0.0.1." is a name: whatever DNS says is judged
  };
  return table;
}

struct outcome {
  action act = action::deny;
  std::string reason;                // of the denial, or of the first allowed address
  std::vector<std::string> dialed;   // addresses the agent would connect to
};

outcome evaluate(const nl::acl::policy& p, const nl::acl::query& q) {
  outcome o;
  if (auto lit = nl::acl::parse_ip_literal(q.host)) {
    auto d = nl::acl::check_address(p, q, *lit);
    o.act = d.act;
    o.reason = d.reason;
    if (d.act == action::allow) {
      o.dialed.push_back(lit->to_string());
    }
    return o;
  }
  if (auto d = nl::acl::check_name(p, q)) {
    REQUIRE(d->act == action::deny);  // check_name only ever denies
    o.reason = d->reason;
    return o;
  }
  std::string key(q.host);
  if (!key.empty() && key.back() == '.') key.pop_back();
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = dns().find(key);
  REQUIRE(it != dns().end());
  std::string first_denial;
  for (const auto& a : it->second) {
    auto d = nl::acl::check_address(p, q, ip::make_address(a));
    if (d.act == action::allow) {
      if (o.dialed.empty()) o.reason = d.reason;
      o.dialed.push_back(a);
    } else if (first_denial.empty()) {
      first_denial = d.reason;
    }
  }
  o.act = o.dialed.empty() ? action::deny : action::allow;
  if (o.dialed.empty()) o.reason = first_denial;
  return o;
}

struct request_case {
  std::string_view host;
  std::uint16_t port;
  action expected;
  std::string_view reason;
  std::vector<std::string> dialed = {};  // checked when not empty
};

void run_table(const nl::acl::policy& p, std::span<const request_case> cases,
               transport_protocol proto = tcp) {
  for (const auto& c : cases) {
    nl::acl::query q;
    q.host = c.host;
    q.port = c.port;
    q.protocol = proto;
    q.client = "someone";
    auto o = evaluate(p, q);
    INFO("host '" << c.host << "' port " << c.port << " -> " << nl::acl::to_string(o.act) << " ("
                  << o.reason << ")");
    CHECK(o.act == c.expected);
    CHECK(o.reason == c.reason);
    if (!c.dialed.empty()) {
      CHECK(o.dialed == c.dialed);
    }
  }
}

}  // namespace

TEST_CASE("parse_ip_literal: every form the resolver accepts, normalised", "[acl][literal]") {
  struct lit {
    std::string_view in;
    std::optional<std::string_view> out;
  };
  const lit cases[] = {
      {"127.0.0.1", "127.0.0.1"},
      {"2130706433", "127.0.0.1"},           // one decimal number
      {"0177.0.0.1", "127.0.0.1"},           // octal part
      {"0x7f.1", "127.0.0.1"},               // hex part, short form
      {"0X7F000001", "127.0.0.1"},           // one hex number, upper case
      {"017700000001", "127.0.0.1"},         // one octal number
      {"127.1", "127.0.0.1"},                // a.b: b is 24 bits
      {"127.0.1", "127.0.0.1"},              // a.b.c: c is 16 bits
      {"0x7f.0.00.01", "127.0.0.1"},         // mixed hex, octal, decimal
      {"0", "0.0.0.0"},
      {"0xa9fea9fe", "169.254.169.254"},
      {"2852039166", "169.254.169.254"},
      {"10.0.65535", "10.0.255.255"},
      {"1.16777215", "1.255.255.255"},
      {"4294967295", "255.255.255.255"},
      {"::1", "::1"},
      {"[::1]", "::1"},
      {"[2001:DB8::1]", "2001:db8::1"},
      {"::ffff:127.0.0.1", "127.0.0.1"},      // IPv4-mapped comes back as IPv4
      {"::ffff:7f00:1", "127.0.0.1"},
      {"[::FFFF:169.254.169.254]", "169.254.169.254"},
      {"0:0:0:0:0:ffff:7f00:0001", "127.0.0.1"},
      {"::127.0.0.1", "::127.0.0.1"},            // IPv4-compatible is IPv6, not unmapped
      // not literals
      {"4294967296", std::nullopt},           // too large
      {"256.1.1.1", std::nullopt},
      {"1.2.3.256", std::nullopt},
      {"1.2.65536", std::nullopt},
      {"1.2.3.4.5", std::nullopt},
      {"08.1.1.1", std::nullopt},             // 8 is not octal
      {"0x", std::nullopt},
      {"0x.1", std::nullopt},
      {"0xg", std::nullopt},
      {"127.0.0.1.", std::nullopt},           // trailing dot: a DNS name
      {".127.0.0.1", std::nullopt},
      {"127..1", std::nullopt},
      {"+127.0.0.1", std::nullopt},
      {" 127.0.0.1", std::nullopt},
      {"127.0.0.1 ", std::nullopt},
      {"fe80::1%eth0", std::nullopt},         // zone ids refused
      {"[127.0.0.1]", std::nullopt},          // brackets hold IPv6 only
      {"::ffff:0177.0.0.1", std::nullopt},    // inet_pton6 takes dotted decimal only
      {"[::1", std::nullopt},
      {"example.com", std::nullopt},
      {"1e3", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& c : cases) {
    INFO("'" << c.in << "'");
    auto a = nl::acl::parse_ip_literal(c.in);
    REQUIRE(a.has_value() == c.out.has_value());
    if (a) {
      CHECK(a->to_string() == *c.out);
    }
  }
}

TEST_CASE("odd literals, mapped IPv6, names and rebinding against a deny list", "[acl][bypass]") {
  const auto p = make_policy({
      {action::deny, "cidr=127.0.0.0/8,::1/128,0.0.0.0/8"},     // r1
      {action::deny, "cidr=169.254.0.0/16"},                    // r2
      {action::deny, "domain=secret.corp,*.internal.corp"},     // r3
      {action::allow, "any"},                                   // r4
  });
  // clang-format off
  const request_case cases[] = {
      {"127.0.0.1", 80, action::deny, "r1"},
      {"2130706433", 80, action::deny, "r1"},
      {"0177.0.0.1", 80, action::deny, "r1"},
      {"0x7f.1", 80, action::deny, "r1"},
      {"0X7F000001", 80, action::deny, "r1"},
      {"017700000001", 80, action::deny, "r1"},
      {"127.1", 80, action::deny, "r1"},
      {"127.0.1", 80, action::deny, "r1"},
      {"0x7f.0.00.01", 80, action::deny, "r1"},
      {"::ffff:127.0.0.1", 80, action::deny, "r1"},
      {"[::ffff:127.0.0.1]", 80, action::deny, "r1"},
      {"::ffff:7f00:1", 80, action::deny, "r1"},
      {"[::1]", 80, action::deny, "r1"},
      {"0:0:0:0:0:0:0:1", 80, action::deny, "r1"},
      {"0", 80, action::deny, "r1"},                               // 0.0.0.0 reaches this host
      {"169.254.169.254", 80, action::deny, "r2"},
      {"0xa9fea9fe", 80, action::deny, "r2"},
      {"2852039166", 80, action::deny, "r2"},
      {"::ffff:a9fe:a9fe", 80, action::deny, "r2"},
      {"fe80::1%eth0", 80, action::deny, "invalid host name"},
      {"::ffff:0177.0.0.1", 80, action::deny, "invalid host name"},
      // domain tricks: case, trailing dot, wildcard vs apex, malformed names
      {"secret.corp", 443, action::deny, "r3"},
      {"SECRET.Corp.", 443, action::deny, "r3"},
      {"x.internal.corp", 443, action::deny, "r3"},
      {"A.B.Internal.CORP.", 443, action::deny, "r3"},
      {"internal.corp", 443, action::allow, "r4"},                 // *.x does not cover x
      {"secret.corp..", 443, action::deny, "invalid host name"},
      {".secret.corp", 443, action::deny, "invalid host name"},
      {"secret.corp%00", 443, action::deny, "invalid host name"},
      {"secret corp", 443, action::deny, "invalid host name"},
      // DNS rebinding: an allowed name resolving to a denied address
      {"rebind.example", 80, action::deny, "r1"},
      {"mapped.example", 80, action::deny, "r1"},
      {"mixed.example", 80, action::allow, "r4", {"203.0.113.6", "2001:db8::6"}},
      {"127.0.0.1.", 80, action::deny, "r1"},                      // a name; its address is judged
      {"public.example", 80, action::allow, "r4", {"203.0.113.5"}},
      {"203.0.113.9", 80, action::allow, "r4", {"203.0.113.9"}},
  };
  // clang-format on
  run_table(p, cases);
}

TEST_CASE("domain allow list: apex vs wildcard, ports, rebinding into a denied range", "[acl][bypass]") {
  const auto p = make_policy({
      {action::allow, "domain=*.example.com;ports=443"},  // r1
      {action::allow, "domain=example.org"},              // r2
      {action::deny, "cidr=10.0.0.0/8"},                  // r3
  });
  // clang-format off
  const request_case cases[] = {
      {"www.example.com", 443, action::allow, "r1", {"93.184.216.34"}},
      {"WWW.EXAMPLE.COM.", 443, action::allow, "r1"},
      {"www.example.com", 80, action::deny, "default deny"},        // decided before DNS
      {"example.com", 443, action::deny, "default deny"},           // apex not under *.
      {"example.org", 80, action::allow, "r2"},
      {"www.example.org", 80, action::deny, "default deny"},        // exact only
      {"evil-example.com", 443, action::deny, "default deny"},
      {"example.com.evil.net", 443, action::deny, "default deny"},
      {"wwwexample.com", 443, action::deny, "default deny"},
      {"intranet.example.com", 443, action::deny, "r3"},            // resolves into 10/8
      {"93.184.216.34", 443, action::deny, "default deny"},         // a literal has no name
      {"0x5db8d822", 443, action::deny, "default deny"},
  };
  // clang-format on
  run_table(p, cases);
}

TEST_CASE("clients and groups; unknown clients; deny beats allow", "[acl][client]") {
  const auto p = make_policy({
      {action::deny, "client=mallory"},                                     // r1
      {action::allow, "client=alice;cidr=10.0.0.0/8"},                      // r2
      {action::allow, "client=group:ops;cidr=10.0.0.0/8,192.168.0.0/16"},   // r3
      {action::allow, "cidr=192.168.1.10;ports=80"},                        // r4
      {action::deny, "client=group:interns;ports=22"},                      // r5
  });
  struct client_case {
    std::string_view client;
    std::vector<std::string> groups;
    std::string_view addr;
    std::uint16_t port;
    action expected;
    std::string_view reason;
  };
  // clang-format off
  const client_case cases[] = {
      {"alice", {}, "10.1.1.1", 22, action::allow, "r2"},
      {"alice", {}, "192.168.5.5", 22, action::deny, "default deny"},
      {"bob", {"ops"}, "192.168.5.5", 22, action::allow, "r3"},
      {"bob", {"dev"}, "192.168.5.5", 22, action::deny, "default deny"},
      {"bob", {"dev", "ops"}, "10.1.1.1", 22, action::allow, "r3"},
      {"bob", {"ops", "interns"}, "10.1.1.1", 22, action::deny, "r5"},    // deny beats allow
      {"bob", {"ops", "interns"}, "10.1.1.1", 80, action::allow, "r3"},
      {"", {"ops"}, "10.1.1.1", 22, action::deny, "default deny"},        // unknown client
      {"", {}, "192.168.1.10", 80, action::allow, "r4"},                  // no client condition
      {"mallory", {"ops"}, "10.1.1.1", 22, action::deny, "r1"},
      {"mallory", {}, "192.168.1.10", 80, action::deny, "r1"},
      {"ops", {}, "192.168.5.5", 22, action::deny, "default deny"},       // a name is not a group
      {"Alice", {}, "10.1.1.1", 22, action::deny, "default deny"},        // names are case-sensitive
      {"bob", {"OPS"}, "10.1.1.1", 22, action::deny, "default deny"},     // so are groups
      {"bob", {}, "192.168.1.10", 80, action::allow, "r4"},
  };
  // clang-format on
  for (const auto& c : cases) {
    nl::acl::query q;
    q.port = c.port;
    q.client = c.client;
    q.groups = c.groups;
    auto d = nl::acl::check_address(p, q, ip::make_address(std::string(c.addr)));
    INFO("client '" << c.client << "' " << c.addr << ":" << c.port << " -> " << d.reason);
    CHECK(d.act == c.expected);
    CHECK(d.reason == c.reason);
  }
  SECTION("client conditions are decided before DNS too") {
    auto q = nl::acl::query{"db.lan", 5432, tcp, "mallory", {}, {}};
    auto d = nl::acl::check_name(p, q);
    REQUIRE(d);
    CHECK(d->reason == "r1");
    q.client = "alice";
    CHECK_FALSE(nl::acl::check_name(p, q));  // r2 may still allow an address in 10/8
  }
}

TEST_CASE("the default, and what check_name decides early", "[acl]") {
  SECTION("default allow: deny rules still apply, the rest passes") {
    const auto p = make_policy({{action::deny, "domain=*.ads.example"}, {action::deny, "cidr=10.0.0.0/8"}},
                               action::allow);
    const request_case cases[] = {
        {"x.ads.example", 443, action::deny, "r1"},
        {"public.example", 443, action::allow, "default allow"},
        {"intranet.example.com", 443, action::deny, "r2"},
        {"10.9.9.9", 443, action::deny, "r2"},
        {"8.8.8.8", 53, action::allow, "default allow"},
    };
    run_table(p, cases);
  }
  SECTION("default deny: a name no rule could allow is never resolved") {
    const auto p = make_policy({{action::allow, "cidr=10.0.0.0/8;protocol=tcp"}});
    auto q = nl::acl::query{"anything.example", 53, udp, {}, {}, {}};
    auto d = nl::acl::check_name(p, q);
    REQUIRE(d);
    CHECK(d->reason == "default deny");
    q.protocol = tcp;
    CHECK_FALSE(nl::acl::check_name(p, q));  // may resolve into 10/8
  }
  SECTION("check_name on an empty host defers to check_address") {
    CHECK_FALSE(nl::acl::check_name(nl::acl::policy{}, nl::acl::query{}));
  }
  SECTION("protocol udp") {
    const auto p = make_policy({{action::allow, "protocol=udp;ports=53"}, {action::deny, "cidr=127.0.0.0/8"}});
    const request_case cases[] = {
        {"public.example", 53, action::allow, "r1"},
        {"rebind.example", 53, action::deny, "r2"},
        {"0x7f.1", 53, action::deny, "r2"},
        {"public.example", 54, action::deny, "default deny"},
    };
    run_table(p, cases, udp);
  }
}
