// Agent-side access policy: an ordered list of allow/deny rules plus a default. Deny wins
// over allow. Domain rules are checked on the name BEFORE resolution (check_name), address
// rules on EVERY resolved address AFTER it (check_address), so a permitted name that
// resolves to a forbidden address is refused. Pure functions; plain values.
//
// Matching, precisely:
//  - A rule matches when EVERY condition it states holds; a condition it leaves out holds
//    for anything (a rule with no condition at all matches every target).
//      cidrs:    any-of on the address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) and
//                CIDRs (::ffff:0:0/96 and longer) are treated as IPv4, so 10.0.0.0/8
//                matches ::ffff:10.1.2.3. "0.0.0.0/0" covers IPv4 only, "::/0" IPv6 only.
//      domains:  any-of on the name, case-insensitive, one trailing dot ignored.
//                "nas.home" matches that name only; "*.example.com" matches
//                sub.example.com and a.b.example.com but NOT example.com itself.
//                With no name (an IP literal was asked for) a domain condition fails.
//      ports:    any-of on inclusive ranges.
//      protocol: tcp or udp.
//  - check_name (before DNS): only what can be decided without an address. A deny rule
//    without cidrs whose other conditions match denies now; otherwise nullopt (resolve,
//    then call check_address for each address).
//  - check_address: deny if any deny rule matches; else allow if any allow rule matches;
//    else the policy's default. The decision's reason names the deciding rule's label, or
//    "default deny" / "default allow".
//
// Rule text (the command line's --allow/--deny RULE, parse_rule_spec): conditions joined
// by ';', each key=value, values of one key separated by ',':
//     cidr=10.0.0.0/8,fd00::/8;ports=22,80-443;protocol=tcp
//     domain=*.lan,nas.home
//     any                      (no condition: matches everything)
// The YAML form (config/) uses the same keys: `- allow: { cidr: [...], domain: [...],
// ports: "22,80-443", protocol: tcp }`.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "proto/frame.hpp"

namespace nl::acl {

enum class action : std::uint8_t { allow, deny };

struct port_range {
  std::uint16_t first = 1;
  std::uint16_t last = 65535;
};

struct cidr {
  boost::asio::ip::address network;  // masked
  unsigned prefix = 0;
};

struct rule {
  action act = action::allow;
  std::vector<cidr> cidrs;            // any-of; empty = any address
  std::vector<std::string> domains;   // any-of; "example.com" or "*.example.com"; lower-case
  std::vector<port_range> ports;      // any-of; empty = any port
  std::optional<proto::transport_protocol> protocol;  // empty = both
  std::string label;                  // "rule 3 at line 41 (deny cidr 10.0.0.0/8)" for messages
};

struct policy {
  action default_action = action::deny;
  std::vector<rule> rules;
};

struct decision {
  action act = action::deny;
  std::string reason;  // which rule (or "default deny") decided
};

// Parse helpers shared by config and tests. nullopt on malformed input.
std::optional<cidr> parse_cidr(std::string_view s);              // "10.0.0.0/8", "::1/128", "1.2.3.4"
std::optional<std::vector<port_range>> parse_ports(std::string_view s);  // "22", "80-443,8080"
std::optional<std::string> normalize_domain_pattern(std::string_view s); // lower-case, strip trailing dot
std::optional<proto::transport_protocol> parse_protocol(std::string_view s);  // "tcp" | "udp"

// Adds one condition to `r`. key: "cidr" (value: one CIDR), "domain" (one pattern),
// "ports" (a list like "22,80-443"; ranges accumulate) or "protocol" (tcp|udp, once).
// Returns "" on success, else "what is wrong; what to do". Shared by the YAML loader and
// parse_rule_spec so both report the same way.
std::string add_condition(rule& r, std::string_view key, std::string_view value);

// Parses the one-line rule text described above. The label is
// "command-line rule (allow cidr 10.0.0.0/8 ports 22)"; callers may replace it.
// On error returns "what is wrong; what to do".
std::expected<rule, std::string> parse_rule_spec(std::string_view spec, action act);

// Readable forms, used in labels and logs.
std::string_view to_string(action a) noexcept;                   // "allow" | "deny"
std::string to_string(const cidr& c);                            // "10.0.0.0/8"
std::string to_string(const std::vector<port_range>& ports);     // "22,80-443"
std::string describe(const rule& r);  // "deny cidr 10.0.0.0/8,fd00::/8 ports 22 protocol tcp"

// Building blocks of the matcher, exposed for tests and for the gateway.
boost::asio::ip::address unmap(const boost::asio::ip::address& a);  // ::ffff:a.b.c.d -> a.b.c.d
bool contains(const cidr& c, const boost::asio::ip::address& a);    // family-aware, unmaps a
// `pattern` as returned by normalize_domain_pattern; `name` raw (case/trailing dot ignored).
bool domain_matches(std::string_view pattern, std::string_view name);

// Name phase: host is a DNS name (not an IP literal). Rules with cidrs are skipped
// (they are judged on the addresses); rules with domains must match the name.
// Returns a final deny, or nullopt when the name phase does not deny (continue to resolve).
std::optional<decision> check_name(const policy& p, std::string_view host, std::uint16_t port,
                                   proto::transport_protocol proto);

// Address phase: judged on one resolved (or literal) address. `host` is the original
// name ("" for a literal) so that domain rules can still match the name.
decision check_address(const policy& p, std::string_view host, const boost::asio::ip::address& a,
                       std::uint16_t port, proto::transport_protocol proto);

}  // namespace nl::acl
