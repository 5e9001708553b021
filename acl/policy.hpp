// Access policy: an ordered list of allow/deny rules plus a default, judged per stream by
// the agent (always, authoritative) and by the gateway where it knows a policy (a
// client's token may carry one, see policy_from_json). Pure functions on plain values:
// no I/O except the read-only time-zone database (/usr/share/zoneinfo, via Howard
// Hinnant's date/tz) the first time a named zone is used. Thread-safe.
//
// THIS COMMENT IS THE REFERENCE for the semantics; docs/acl.md is the user's version.
//
// 1. Rules and matching
//  A rule matches a request when EVERY condition it states holds; a condition it leaves
//  out holds for anything (a rule with no condition, "any", matches every request).
//    cidrs:    any-of on the ADDRESS (after resolution, or the literal asked for).
//              IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) and mapped CIDRs
//              (::ffff:0:0/96 and longer) are treated as IPv4, so 10.0.0.0/8 matches
//              ::ffff:10.1.2.3. "0.0.0.0/0" covers IPv4 only, "::/0" IPv6 only. Other
//              embeddings (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4) are NOT
//              unmapped: they are IPv6 addresses. Note that on Linux connecting to
//              0.0.0.0 or :: reaches this host: deny 0.0.0.0/8 and ::/128 along with
//              127.0.0.0/8 and ::1 when loopback matters.
//    domains:  any-of on the NAME asked for, ASCII case-insensitive, one trailing dot
//              ignored. "nas.home" matches that name only; "*.example.com" matches
//              sub.example.com and a.b.example.com but NOT example.com itself (write
//              both to get both). A request for an IP literal (any form, see 3) has no
//              name, so a domain condition never holds for it.
//    ports:    any-of on inclusive ranges 1..65535.
//    protocol: tcp or udp.
//    times:    any-of on time windows (time_window below), judged at query::now.
//    clients:  any-of on the asking client: "alice" holds when the client's token name
//              is exactly "alice" (case-sensitive, as token names are); "group:ops" when
//              "ops" is one of the client's groups (token "grp" claim). With no known
//              client (query::client empty) every client condition FAILS, group ones
//              included: an allow rule naming clients never lets an unknown client in.
//
// 2. Evaluation order (deny wins; the default decides the rest)
//  check_name (BEFORE DNS, q.host a name) answers, in this order:
//    a. q.host an IP literal in any form (3): the address decision of check_address
//       on that address if it is a deny, else nullopt (the caller dials the address
//       parse_ip_literal returns, never the text).
//    b. q.host not a syntactically valid DNS name (labels of [A-Za-z0-9_-], 1..63
//       chars, total <= 253 after dropping ONE trailing dot; e.g. "a..b", "x y",
//       "fe80::1%eth0", "nas.home..") -> deny "invalid host name", whatever the default.
//    c. a deny rule WITHOUT cidrs whose other conditions hold -> deny (that rule).
//    d. the default is deny and no allow rule could hold for any address (its non-cidr
//       conditions fail) -> deny "default deny": a name that cannot be allowed is never
//       resolved (no DNS queries for attacker-chosen names through the agent).
//    e. otherwise nullopt: resolve, then call check_address for EVERY address and use
//       only the allowed ones (or refuse when none is). A deny from check_name is final.
//  check_address (AFTER DNS, on one address; q.host = the name asked for, or "" / the
//  literal text for a literal): deny if any deny rule matches; else allow if any allow
//  rule matches; else the default. Domain conditions are judged on q.host (no name when
//  q.host is empty or an IP literal; an invalid name -> deny "invalid host name"), cidr
//  conditions on the address, so a permitted name that resolves to a forbidden address
//  is refused (DNS rebinding). The decision's reason is the deciding rule's label, or
//  "default deny" / "default allow" / "invalid host name".
//  Rule order never changes the decision (only which label a decision names: the first
//  matching deny rule, else the first matching allow rule).
//
// 3. IP literals (parse_ip_literal): what the system resolver (glibc getaddrinfo, i.e.
//  inet_aton_exact and inet_pton6) would take as an address, normalised:
//    IPv4 in 1..4 dot-separated parts, each decimal, octal (leading 0) or hex (0x/0X),
//    C-style: "2130706433", "0177.0.0.1", "0x7f.1", "0X7F000001", "127.1" (a.b: b is 24
//    bits), "127.0.1" (a.b.c: c is 16 bits), mixed ("0x7f.0.00.01"). Every part but the
//    last <= 255, the last <= what is left; no sign, no spaces, no empty part, no
//    trailing dot ("127.0.0.1." is a DNS name; its resolved addresses are checked).
//    IPv6 as inet_pton6 takes it, optionally in brackets ("[::1]"); zone ids ("%eth0")
//    are refused (nullopt, and check_name then denies it as an invalid name).
//    IPv4-mapped IPv6 ("::ffff:127.0.0.1", "::ffff:7f00:1", "[::FFFF:7f00:1]") comes back
//    as the IPv4 address. Everything else -> nullopt.
//
// 4. Time windows (time_window): local wall-clock time in a named IANA zone (tz,
//  resolved with the system tz database when parsed; unknown names are refused). The
//  window's days are the days it STARTS on. With start < end it covers [start, end) of
//  each such day; with end < start it crosses midnight: "fri 22:00-06:00" covers Friday
//  22:00 to Saturday 06:00 (and so "sun 22:00-02:00" covers Monday 00:00-02:00). End
//  24:00 (1440) means the end of the day; an end of 00:00 is read as 24:00. start ==
//  end is refused when parsed (write 00:00-24:00 for a whole day) and never matches.
//  Minutes are whole: 18:00 is outside 08:00-18:00, 17:59:59 inside.
//  DST: windows are wall-clock. On a spring-forward day the skipped hour never occurs
//  (a window inside it matches no instant; 22:00-06:00 lasts 7 hours that night); on a
//  fall-back day the repeated hour matches twice (both instants have that local time).
//  A rule with days/hours but no tz uses UTC. If a zone cannot be found at evaluation
//  (only possible for hand-built policies, or tzdata removed at run time) the window
//  fails closed: it holds for deny rules and fails for allow rules.
//
// 5. Rule text (parse_rule_spec: --allow/--deny, nl-gateway token, the "pol" claim):
//  conditions joined by ';', each key=value, several values of one key joined by ','
//  (each key at most once):
//     cidr=10.0.0.0/8,fd00::/8;ports=22,80-443;protocol=tcp
//     domain=*.lan,nas.home
//     days=mon-fri,sun;hours=08:00-12:00,13:00-18:00;tz=Europe/Berlin
//     client=alice,group:ops
//     any                      (no condition: matches everything)
//  days: mon tue wed thu fri sat sun (or full names), case-insensitive, ranges allowed
//  and may wrap ("fri-mon" = fri,sat,sun,mon). hours: HH:MM-HH:MM (or H-H, "8-18"), 24:00
//  allowed as an end; several ranges give several windows. A rule's windows are every
//  hours range on the given days (all days without days=, the whole day without hours=)
//  in tz (UTC without tz=); tz= alone is refused (it would change nothing).
//  The YAML form (config/) uses the same keys except clients: `- deny: { cidr: [...],
//  domain: [...], ports: "22,80-443", protocol: tcp, days: "mon-fri", hours:
//  "08:00-18:00", tz: Europe/Berlin, clients: [alice, "group:ops"] }`.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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

// One time window; a rule's windows are any-of. See 4. above.
struct time_window {
  std::uint8_t days = 0x7f;  // bit 0 = Monday ... bit 6 = Sunday: the day the window STARTS on
  std::uint16_t start_minute = 0, end_minute = 24 * 60;  // [start, end) local minutes; end < start crosses midnight
  std::string tz = "UTC";    // IANA name, resolved when parsed ("" is read as UTC)
  friend bool operator==(const time_window&, const time_window&) = default;
};

struct rule {
  action act = action::allow;
  std::vector<cidr> cidrs;            // any-of; empty = any address
  std::vector<std::string> domains;   // any-of; "example.com" or "*.example.com"; lower-case
  std::vector<port_range> ports;      // any-of; empty = any port
  std::optional<proto::transport_protocol> protocol;  // empty = both
  std::vector<time_window> times;     // any-of; empty = at any time
  std::vector<std::string> clients;   // any-of; "name" or "group:name"; empty = any client
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

// What is asked, by whom, when. Views: the caller keeps the data alive during the call.
struct query {
  std::string_view host;               // name as asked, or "" when the target is an address
  std::uint16_t port = 0;
  proto::transport_protocol protocol = proto::transport_protocol::tcp;
  std::string_view client;             // the asking client's token name ("" = unknown: client conditions fail)
  std::span<const std::string> groups; // its groups (from its token)
  std::chrono::system_clock::time_point now{};  // evaluation time (callers pass system_clock::now())
};

// --- Parse helpers shared by config, the gateway and tests. nullopt on malformed input.
std::optional<cidr> parse_cidr(std::string_view s);              // "10.0.0.0/8", "::1/128", "1.2.3.4"
std::optional<std::vector<port_range>> parse_ports(std::string_view s);  // "22", "80-443,8080"
std::optional<std::string> normalize_domain_pattern(std::string_view s); // lower-case, strip trailing dot
std::optional<proto::transport_protocol> parse_protocol(std::string_view s);  // "tcp" | "udp"
std::optional<std::uint8_t> parse_days(std::string_view s);      // "mon-fri,sun" -> bit mask (never 0)
// One range "HH:MM-HH:MM" -> {start, end} minutes; end 00:00 becomes 1440; start == end refused.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_hours(std::string_view s);
bool valid_time_zone(std::string_view tz);                       // known to the tz database
std::optional<std::string> normalize_client(std::string_view s); // "alice" | "group:ops" (identifiers)
// IP literal in any form of 3. above -> address (IPv4-mapped unmapped); nullopt when
// `host` is a DNS name (or nothing valid).
std::optional<boost::asio::ip::address> parse_ip_literal(std::string_view host);
// True for a syntactically valid DNS name as in 2.b above (one trailing dot allowed).
bool valid_dns_name(std::string_view name);

// Builds one rule from conditions given one at a time, in any order; the YAML loader and
// parse_rule_spec both use it, so they accept and report alike. Keys: cidr (one CIDR),
// domain (one pattern), ports ("22,80-443"), protocol (tcp|udp, once), days
// ("mon-fri,sun"), hours ("08:00-18:00", or several joined by ','), tz (once), client
// ("alice" or "group:ops"). Values of cidr/domain/ports/days/hours/client accumulate.
class rule_builder {
public:
  explicit rule_builder(action act) { r_.act = act; }
  // "" on success, else "what is wrong; what to do".
  std::string add(std::string_view key, std::string_view value);
  // Combines days, hours and tz into the rule's windows. The label is left empty.
  std::expected<rule, std::string> finish() const;

private:
  rule r_;
  std::uint8_t days_ = 0;  // 0 = not given
  std::vector<std::pair<std::uint16_t, std::uint16_t>> hours_;
  std::string tz_;         // "" = not given
};

// Adds one condition directly to `r`: cidr, domain, ports, protocol or client (the keys
// that need no combining). Time keys are refused here: use rule_builder. "" on success.
std::string add_condition(rule& r, std::string_view key, std::string_view value);

// Parses the one-line rule text of 5. above. The label is
// "command-line rule (allow cidr 10.0.0.0/8 ports 22)"; callers may replace it.
// On error returns "what is wrong; what to do".
std::expected<rule, std::string> parse_rule_spec(std::string_view spec, action act);

// The rule text(s) of `r`, parse_rule_spec's inverse (conditions in a fixed order,
// "any" for none). One text per distinct (days, tz) among its windows: parsed back and
// taken together they match exactly what `r` matches. Empty when `r` can never match
// (every window empty).
std::vector<std::string> to_specs(const rule& r);

// Per-client policy carried in tokens ("pol" claim) as compact JSON:
//   {"default":"deny","rules":[{"allow":"cidr=10.0.0.0/8;ports=22"},{"deny":"domain=*.corp"}]}
// "default" (allow|deny) may be left out (deny); "rules" may be left out (none); no other
// keys; each rule an object with exactly one key, allow or deny, whose value is rule text
// (5.). Labels become "token policy rule N (...)". Errors name the rule: "rule 2 (deny
// 'domain=a..b'): ...". Inputs over 64 KiB or nested deeper than 8 are refused.
std::expected<policy, std::string> policy_from_json(std::string_view json);
// Compact JSON of `p` in the form above; policy_from_json(policy_to_json(p)) decides
// exactly like p (a rule whose windows differ in days or tz becomes several rules).
std::string policy_to_json(const policy& p);

// --- Readable forms, used in labels and logs.
std::string_view to_string(action a) noexcept;                   // "allow" | "deny"
std::string to_string(const cidr& c);                            // "10.0.0.0/8"
std::string to_string(const std::vector<port_range>& ports);     // "22,80-443"
std::string days_to_string(std::uint8_t days);                   // "mon-fri,sun"
std::string hours_to_string(std::uint16_t start, std::uint16_t end);  // "22:00-06:00"
// "deny cidr 10.0.0.0/8 ports 22 protocol tcp days mon-fri hours 08:00-18:00 tz
// Europe/Berlin client alice,group:ops"
std::string describe(const rule& r);

// --- Building blocks of the matcher, exposed for tests and for the gateway.
boost::asio::ip::address unmap(const boost::asio::ip::address& a);  // ::ffff:a.b.c.d -> a.b.c.d
bool contains(const cidr& c, const boost::asio::ip::address& a);    // family-aware, unmaps a
// `pattern` as returned by normalize_domain_pattern; `name` raw (case/trailing dot ignored).
bool domain_matches(std::string_view pattern, std::string_view name);
// Whether `now` falls in the window (4. above). nullopt when its zone cannot be found.
std::optional<bool> in_window(const time_window& w, std::chrono::system_clock::time_point now);
// One client condition ("alice" / "group:ops") against q.client / q.groups.
bool client_matches(std::string_view condition, const query& q);

// Name phase (2. above): a final deny, or nullopt to go on (resolve, check each address).
std::optional<decision> check_name(const policy& p, const query& q);
// Address phase (2. above), on one resolved or literal address.
decision check_address(const policy& p, const query& q, const boost::asio::ip::address& a);

// Earlier forms, kept for existing callers: no client (client conditions fail) and the
// current time (system_clock::now()). Prefer the query forms.
std::optional<decision> check_name(const policy& p, std::string_view host, std::uint16_t port,
                                   proto::transport_protocol proto);
decision check_address(const policy& p, std::string_view host, const boost::asio::ip::address& a,
                       std::uint16_t port, proto::transport_protocol proto);

}  // namespace nl::acl
