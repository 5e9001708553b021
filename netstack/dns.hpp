// DNS for the TUN capture. Queries to port 53 inside the captured ranges never leave the
// machine as plaintext to a local resolver: A and AAAA questions are answered at once with
// a fake address from a pool that is itself routed into the TUN, remembering which name it
// stands for; a later TCP/UDP flow to that fake address is opened at the agent BY NAME, so
// the agent resolves it and its domain ACL applies. Other question types are forwarded
// unchanged to the agent (a UDP flow like any other). Pure code: parsing and building of
// DNS messages (RFC 1035, with EDNS0 OPT records tolerated) and the name<->address pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "netstack/addr.hpp"

namespace nl::netstack::dns {

namespace qtype {
inline constexpr std::uint16_t a = 1;
inline constexpr std::uint16_t aaaa = 28;
}  // namespace qtype

namespace rcode {
inline constexpr std::uint8_t noerror = 0;
inline constexpr std::uint8_t formerr = 1;
inline constexpr std::uint8_t servfail = 2;
inline constexpr std::uint8_t nxdomain = 3;
inline constexpr std::uint8_t notimp = 4;
inline constexpr std::uint8_t refused = 5;
}  // namespace rcode

struct query {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;   // as received (RD is echoed in answers)
  std::string name;          // lower-case, no trailing dot; "" for the root
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::size_t question_end = 0;  // offset just past the (first) question in the message
};

// Parses a DNS query message: QR must be 0, opcode 0 (QUERY), exactly one question
// (QDCOUNT == 1), no compression pointers in the question, labels 1..63 bytes, name
// <= 253 characters. ANCOUNT/NSCOUNT must be 0; ARCOUNT may hold an EDNS0 OPT (ignored).
// Names are taken byte-for-byte (lower-cased ASCII); a label containing '.' or bytes
// outside printable ASCII is rejected. The error is a short reason for logs.
std::expected<query, std::string_view> parse_query(std::span<const std::byte> msg) noexcept;

// A response to q (copying its question from `msg`, the original query bytes): QR=1, RA=1,
// RD echoed, rcode 0, one answer RR per address in `answers` (A records for IPv4, AAAA for
// IPv6; addresses of the wrong family for q.qtype are skipped), each with `ttl`, the owner
// name as a compression pointer to the question. An empty `answers` gives NOERROR/NODATA.
std::vector<std::byte> build_answer(std::span<const std::byte> msg, const query& q,
                                    std::span<const ip_address> answers, std::uint32_t ttl);
// A response with no answers and the given rcode (the question copied when q is given and
// well-formed, otherwise QDCOUNT 0 with only the id copied from the first two bytes of msg,
// if present). Used for FORMERR/SERVFAIL/REFUSED/NOTIMP.
std::vector<std::byte> build_error(std::span<const std::byte> msg, const query* q, std::uint8_t rc);

// Names <-> fake addresses. Each name gets one IPv4 and (on demand) one IPv6 address from
// its pool; when a pool is full the least recently used mapping is recycled. Looking up a
// fake address refreshes it. Pools: v4 base/prefix (e.g. 198.18.128.0/17) and v6
// base/prefix (e.g. fd6e:6c01::/96); network and v4 broadcast addresses are never handed
// out. capacity caps the mappings per family (min(capacity, pool size)).
class fake_ip_pool {
public:
  fake_ip_pool(ip_address v4_base, unsigned v4_prefix, ip_address v6_base, unsigned v6_prefix,
               std::size_t capacity);

  // The fake address for name (lower-case, no trailing dot) of the family (v6 = AAAA).
  ip_address assign(std::string_view name, bool v6);
  // The name a fake address stands for, or nullopt (not in the pools, or recycled).
  std::optional<std::string> name_of(const ip_address& a);
  // True if a lies inside the v4 or v6 pool (whether or not it is mapped now).
  bool contains(const ip_address& a) const noexcept;
  std::size_t size(bool v6) const noexcept;

private:
  struct family {
    ip_address base;
    unsigned prefix = 0;
    std::uint64_t span = 0;      // usable addresses
    std::uint64_t next = 0;      // next never-used offset
    std::size_t capacity = 0;
    std::list<std::pair<std::string, std::uint64_t>> lru;  // front = most recent; (name, offset)
    std::unordered_map<std::string, decltype(lru)::iterator> by_name;
    std::unordered_map<std::uint64_t, decltype(lru)::iterator> by_offset;
  };
  family v4_, v6_;
  static ip_address at(const family& f, std::uint64_t offset) noexcept;
  static std::optional<std::uint64_t> offset_of(const family& f, const ip_address& a) noexcept;
};

}  // namespace nl::netstack::dns
