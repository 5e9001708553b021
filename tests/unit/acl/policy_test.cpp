#include "acl/policy.hpp"
#include "builders.hpp"

#include <catch2/catch.hpp>

namespace {

using acl_test::rule_of;
using acl_test::make_policy;
using nl::acl::action;
using nl::proto::transport_protocol;
namespace ip = boost::asio::ip;

constexpr auto tcp = transport_protocol::tcp;
constexpr auto udp = transport_protocol::udp;

const nl::acl::policy& home_policy() {
  static const auto p = make_policy({
      {action::deny, "cidr=169.254.0.0/16"},                                      // r1
      {action::deny, "cidr=10.9.0.0/16;ports=22"},                                // r2
      {action::deny, "domain=*.bad.example"},                                     // r3
      {action::deny, "ports=25;protocol=tcp"},                                    // r4
      {action::allow, "cidr=192.168.1.0/24,fd00::/8;ports=22,80-443;protocol=tcp"},  // r5
      {action::allow, "domain=*.lan,nas.home"},                                   // r6
      {action::allow, "cidr=10.0.0.0/8"},                                         // r7
      {action::allow, "protocol=udp;ports=53"},                                   // r8
      {action::deny, "cidr=10.8.0.0/16;domain=db.lan"},                           // r9
  });
  return p;
}

struct address_case {
  std::string_view host;  // "" = IP literal
  std::string_view addr;
  std::uint16_t port;
  transport_protocol proto;
  action expected;
  std::string_view reason;
};

}  // namespace

TEST_CASE("check_address: table", "[acl]") {
  // clang-format off
  const address_case cases[] = {
      // cidr + port range + protocol (r5)
      {"", "192.168.1.5", 22, tcp, action::allow, "r5"},
      {"", "192.168.1.5", 80, tcp, action::allow, "r5"},
      {"", "192.168.1.5", 443, tcp, action::allow, "r5"},        // range end inclusive
      {"", "192.168.1.5", 444, tcp, action::deny, "default deny"},
      {"", "192.168.1.5", 79, tcp, action::deny, "default deny"},
      {"", "192.168.1.5", 22, udp, action::deny, "default deny"},  // protocol mismatch
      {"", "192.168.2.5", 22, tcp, action::deny, "default deny"},  // outside /24
      {"", "192.168.1.0", 22, tcp, action::allow, "r5"},
      {"", "192.168.1.255", 22, tcp, action::allow, "r5"},
      // IPv6
      {"", "fd00::1", 22, tcp, action::allow, "r5"},
      {"", "fdff:ffff::1", 443, tcp, action::allow, "r5"},
      {"", "fe00::1", 22, tcp, action::deny, "default deny"},
      {"", "::1", 22, tcp, action::deny, "default deny"},
      // IPv4-mapped IPv6 is judged as IPv4, for allow and for deny
      {"", "::ffff:192.168.1.9", 22, tcp, action::allow, "r5"},
      {"", "::ffff:169.254.169.254", 80, tcp, action::deny, "r1"},
      {"", "::ffff:10.1.1.1", 9999, tcp, action::allow, "r7"},
      // deny wins over allow, whatever the order
      {"metadata.lan", "169.254.169.254", 80, tcp, action::deny, "r1"},
      {"", "10.9.1.1", 22, tcp, action::deny, "r2"},
      {"", "10.9.1.1", 23, tcp, action::allow, "r7"},
      {"", "10.1.2.3", 22, tcp, action::allow, "r7"},
      {"", "10.1.2.3", 25, tcp, action::deny, "r4"},
      {"", "10.1.2.3", 25, udp, action::allow, "r7"},
      {"evil.bad.example", "192.168.1.5", 22, tcp, action::deny, "r3"},
      {"bad.example", "192.168.1.5", 22, tcp, action::allow, "r5"},  // apex not under *.
      // domains: wildcard, exact, case, trailing dot
      {"nas.home", "203.0.113.7", 8080, tcp, action::allow, "r6"},
      {"NAS.Home.", "203.0.113.7", 8080, tcp, action::allow, "r6"},
      {"x.nas.home", "203.0.113.7", 8080, tcp, action::deny, "default deny"},  // exact only
      {"printer.lan", "203.0.113.7", 631, udp, action::allow, "r6"},
      {"a.b.lan", "203.0.113.7", 80, tcp, action::allow, "r6"},
      {"a.lan.", "203.0.113.7", 80, tcp, action::allow, "r6"},
      {"lan", "203.0.113.7", 80, tcp, action::deny, "default deny"},
      {"xlan", "203.0.113.7", 80, tcp, action::deny, "default deny"},
      {"lan.evil", "203.0.113.7", 80, tcp, action::deny, "default deny"},
      // a literal has no name: domain rules never match it
      {"", "203.0.113.7", 80, tcp, action::deny, "default deny"},
      // cidr AND domain must both hold (r9)
      {"db.lan", "10.8.1.1", 5432, tcp, action::deny, "r9"},
      {"db.lan", "10.7.1.1", 5432, tcp, action::allow, "r6"},
      {"", "10.8.1.1", 5432, tcp, action::allow, "r7"},
      // protocol-only rule with ports (r8)
      {"dns.example", "8.8.8.8", 53, udp, action::allow, "r8"},
      {"dns.example", "8.8.8.8", 53, tcp, action::deny, "default deny"},
  };
  // clang-format on
  for (const auto& c : cases) {
    auto a = ip::make_address(std::string(c.addr));
    auto d = nl::acl::check_address(home_policy(), c.host, a, c.port, c.proto);
    INFO("host '" << c.host << "' addr " << c.addr << " port " << c.port
                  << (c.proto == tcp ? " tcp" : " udp") << " -> " << d.reason);
    CHECK(d.act == c.expected);
    CHECK(d.reason == c.reason);
  }
}

TEST_CASE("check_name: decides only what needs no address", "[acl]") {
  struct name_case {
    std::string_view host;
    std::uint16_t port;
    transport_protocol proto;
    std::optional<std::string_view> denied_by;
  };
  const name_case cases[] = {
      {"evil.bad.example", 80, tcp, "r3"},
      {"EVIL.Bad.Example.", 80, tcp, "r3"},
      {"a.b.bad.example", 80, udp, "r3"},
      {"bad.example", 80, tcp, std::nullopt},
      {"x.lan", 80, tcp, std::nullopt},  // allow rules never decide early
      {"mail.example", 25, tcp, "r4"},   // deny without cidr or domain: decided by port
      {"mail.example", 25, udp, std::nullopt},
      {"metadata.internal", 80, tcp, std::nullopt},  // cidr deny waits for the addresses
      {"db.lan", 5432, tcp, std::nullopt},           // cidr+domain deny waits as well
  };
  for (const auto& c : cases) {
    INFO("host " << c.host << " port " << c.port);
    auto d = nl::acl::check_name(home_policy(), c.host, c.port, c.proto);
    if (c.denied_by) {
      REQUIRE(d);
      CHECK(d->act == action::deny);
      CHECK(d->reason == *c.denied_by);
    } else {
      CHECK_FALSE(d);
    }
  }
}

TEST_CASE("defaults and families", "[acl]") {
  auto v4 = ip::make_address("198.51.100.1");
  auto v6 = ip::make_address("2001:db8::1");
  auto mapped = ip::make_address("::ffff:198.51.100.1");

  SECTION("empty policy denies by default and says so") {
    nl::acl::policy p;
    auto d = nl::acl::check_address(p, "", v4, 80, tcp);
    CHECK(d.act == action::deny);
    CHECK(d.reason == "default deny");
    // Nothing can be allowed, so the name is refused before it is resolved.
    auto n = nl::acl::check_name(p, "example.com", 80, tcp);
    REQUIRE(n);
    CHECK(n->reason == "default deny");
  }
  SECTION("default allow still honours deny rules") {
    auto p = make_policy({{action::deny, "cidr=198.51.100.0/24"}}, action::allow);
    CHECK(nl::acl::check_address(p, "", v4, 80, tcp).act == action::deny);
    auto d = nl::acl::check_address(p, "", v6, 80, tcp);
    CHECK(d.act == action::allow);
    CHECK(d.reason == "default allow");
  }
  SECTION("0.0.0.0/0 is IPv4 only, ::/0 IPv6 only; mapped counts as IPv4") {
    auto p4 = make_policy({{action::allow, "cidr=0.0.0.0/0"}});
    auto p6 = make_policy({{action::allow, "cidr=::/0"}});
    CHECK(nl::acl::check_address(p4, "", v4, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p4, "", mapped, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p4, "", v6, 1, tcp).act == action::deny);
    CHECK(nl::acl::check_address(p6, "", v6, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p6, "", v4, 1, tcp).act == action::deny);
    CHECK(nl::acl::check_address(p6, "", mapped, 1, tcp).act == action::deny);
  }
  SECTION("a mapped CIDR is an IPv4 CIDR") {
    auto p = make_policy({{action::allow, "cidr=::ffff:198.51.100.0/120"}});
    CHECK(nl::acl::check_address(p, "", v4, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p, "", mapped, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p, "", ip::make_address("198.51.101.1"), 1, tcp).act == action::deny);
  }
  SECTION("'any' matches everything") {
    auto p = make_policy({{action::allow, "any"}});
    CHECK(nl::acl::check_address(p, "", v6, 65535, udp).act == action::allow);
    CHECK(p.rules[0].cidrs.empty());
  }
  SECTION("host /32 and /128") {
    auto p = make_policy({{action::allow, "cidr=198.51.100.1,2001:db8::1"}});
    CHECK(nl::acl::check_address(p, "", v4, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p, "", v6, 1, tcp).act == action::allow);
    CHECK(nl::acl::check_address(p, "", ip::make_address("198.51.100.2"), 1, tcp).act == action::deny);
    CHECK(nl::acl::check_address(p, "", ip::make_address("2001:db8::2"), 1, tcp).act == action::deny);
  }
}

TEST_CASE("parse_cidr", "[acl]") {
  struct c {
    std::string_view in;
    std::optional<std::string_view> out;
  };
  const c cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"10.1.2.3/8", "10.0.0.0/8"},  // host bits are masked off
      {"1.2.3.4", "1.2.3.4/32"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"::1", "::1/128"},
      {"fd00::/8", "fd00::/8"},
      {"fdab:cd::1/16", "fdab::/16"},
      {"2001:db8::/33", "2001:db8::/33"},
      {"::ffff:10.0.0.0/104", "10.0.0.0/8"},
      {"::ffff:10.1.2.3", "10.1.2.3/32"},
      {"10.0.0.0/33", std::nullopt},
      {"::/129", std::nullopt},
      {"10.0.0.0/", std::nullopt},
      {"10.0.0.0/-1", std::nullopt},
      {"10.0.0.0/8/8", std::nullopt},
      {"10.0.0/8", std::nullopt},
      {"10.0.0.256", std::nullopt},
      {"fe80::1%eth0", std::nullopt},
      {"example.com", std::nullopt},
      {"/8", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& x : cases) {
    INFO(x.in);
    auto r = nl::acl::parse_cidr(x.in);
    REQUIRE(r.has_value() == x.out.has_value());
    if (r) {
      CHECK(nl::acl::to_string(*r) == *x.out);
    }
  }
}

TEST_CASE("parse_ports", "[acl]") {
  CHECK(nl::acl::to_string(*nl::acl::parse_ports("22")) == "22");
  CHECK(nl::acl::to_string(*nl::acl::parse_ports("80-443,8080")) == "80-443,8080");
  CHECK(nl::acl::to_string(*nl::acl::parse_ports(" 22 , 1-65535 ")) == "22,1-65535");
  CHECK(nl::acl::to_string(*nl::acl::parse_ports("7-7")) == "7");
  for (std::string_view bad : {"", "0", "65536", "443-80", "22,", ",22", "a", "1-2-3", "-5", "22 23", "+22"}) {
    INFO(bad);
    CHECK_FALSE(nl::acl::parse_ports(bad));
  }
}

TEST_CASE("domain patterns", "[acl]") {
  CHECK(*nl::acl::normalize_domain_pattern("NAS.Home.") == "nas.home");
  CHECK(*nl::acl::normalize_domain_pattern("*.LAN") == "*.lan");
  CHECK(*nl::acl::normalize_domain_pattern("_sip._tcp.example.com") == "_sip._tcp.example.com");
  for (std::string_view bad : {"", ".", "*", "*.", "a..b", "a.*.b", "**.a", "a b", "10.0.0.1", "::1",
                               "*.10.0.0.1", "ex*ample.com", "a/b"}) {
    INFO(bad);
    CHECK_FALSE(nl::acl::normalize_domain_pattern(bad));
  }
  CHECK(nl::acl::domain_matches("*.example.com", "sub.example.com"));
  CHECK(nl::acl::domain_matches("*.example.com", "A.B.Example.COM."));
  CHECK_FALSE(nl::acl::domain_matches("*.example.com", "example.com"));
  CHECK_FALSE(nl::acl::domain_matches("*.example.com", "badexample.com"));
  CHECK_FALSE(nl::acl::domain_matches("*.example.com", ".example.com"));
  CHECK(nl::acl::domain_matches("example.com", "EXAMPLE.com."));
  CHECK_FALSE(nl::acl::domain_matches("example.com", "www.example.com"));
}

TEST_CASE("parse_rule_spec", "[acl]") {
  auto r = rule_of("cidr=10.0.0.0/8;ports=22,80-90;protocol=tcp", action::deny);
  CHECK(r.act == action::deny);
  REQUIRE(r.cidrs.size() == 1);
  CHECK(r.ports.size() == 2);
  CHECK(r.protocol == tcp);
  CHECK(r.label == "command-line rule (deny cidr 10.0.0.0/8 ports 22,80-90 protocol tcp)");
  CHECK(nl::acl::describe(rule_of("domain=*.LAN,nas.home", action::allow)) ==
        "allow domain *.lan,nas.home");
  CHECK(nl::acl::describe(rule_of(" cidr = 10.0.0.0/8 , fd00::/8 ; ", action::allow)) ==
        "allow cidr 10.0.0.0/8,fd00::/8");
  CHECK(nl::acl::describe(rule_of("any", action::allow)) == "allow any");

  struct bad {
    std::string_view spec;
    std::string_view says;
  };
  const bad cases[] = {
      {"", "empty rule"},
      {"cidr", "is not key=value"},
      {"port=22", "did you mean 'ports'?"},
      {"proto=tcp", "did you mean 'protocol'?"},
      {"address=1.2.3.4", "conditions are cidr, domain, ports, protocol, days, hours, tz and client"},
      {"cidr=10.0.0.0/33", "'10.0.0.0/33' is not an address or CIDR"},
      {"cidr=10.0.0.0/8;cidr=11.0.0.0/8", "'cidr' given twice"},
      {"domain=1.2.3.4", "put it under cidr"},
      {"domain=a..b", "not a domain name"},
      {"ports=0-10", "not a port list"},
      {"ports=90-80", "not a port list"},
      {"protocol=sctp", "write tcp or udp"},
      {"cidr=", "has no value"},
  };
  for (const auto& b : cases) {
    INFO(b.spec);
    auto e = nl::acl::parse_rule_spec(b.spec, action::allow);
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error(), Catch::Contains(std::string(b.says)));
  }
}

TEST_CASE("add_condition accumulates and refuses conflicting protocol", "[acl]") {
  nl::acl::rule r;
  CHECK(nl::acl::add_condition(r, "ports", "22").empty());
  CHECK(nl::acl::add_condition(r, "ports", "80-81").empty());
  CHECK(nl::acl::to_string(r.ports) == "22,80-81");
  CHECK(nl::acl::add_condition(r, "protocol", "UDP").empty());
  CHECK_THAT(nl::acl::add_condition(r, "protocol", "tcp"), Catch::Contains("given twice"));
  CHECK_THAT(nl::acl::add_condition(r, "cidrs", "1.2.3.4"), Catch::Contains("did you mean 'cidr'?"));
}
