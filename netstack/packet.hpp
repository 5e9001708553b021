// Pure IPv4/IPv6 + TCP/UDP packet code for the TUN capture: parse what the kernel hands us,
// rewrite addresses and ports in place with RFC 1624 incremental checksums (the NAT in
// front of lwIP), and build the few packets we originate ourselves (TCP RST, UDP replies,
// ICMP unreachable). No I/O, no allocation on the parse/rewrite path; every function
// takes untrusted bytes and must never read or write out of bounds (fuzz_packet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "netstack/addr.hpp"

namespace nl::netstack {

namespace ipproto {
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t icmpv6 = 58;
}  // namespace ipproto

namespace tcpflag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
}  // namespace tcpflag

// What parse() learned about one packet. Offsets are from the start of the packet.
struct packet_info {
  std::uint8_t version = 0;      // 4 or 6
  std::uint8_t proto = 0;        // ipproto:: value of the transport header (after v6 extension headers)
  ip_address src, dst;
  std::size_t l4_offset = 0;     // start of the TCP/UDP/ICMP header
  std::size_t l4_length = 0;     // transport header + payload (from the IP length field)
  std::size_t total_length = 0;  // IP total length (<= the buffer; trailing bytes are ignored)
  // TCP and UDP only:
  std::uint16_t sport = 0, dport = 0;
  std::size_t payload_offset = 0;  // first byte of TCP/UDP payload
  std::size_t payload_length = 0;
  // TCP only:
  std::uint8_t tcp_flags = 0;
  std::uint32_t seq = 0, ack = 0;
};

enum class parse_error {
  truncated,          // shorter than its headers or its length field says
  bad_version,        // neither 4 nor 6
  bad_header,         // IHL < 5, TCP data offset < 5, UDP length inconsistent, ...
  fragment,           // IPv4 fragment (MF set or offset != 0) or an IPv6 fragment header
  unsupported,        // a transport or extension header we do not handle (still well-formed)
};
std::string_view to_string(parse_error e) noexcept;

// Parses an IPv4 or IPv6 packet. TCP and UDP fill the port and payload fields; ICMP/ICMPv6
// and other protocols return with proto set and ports zero (not an error). IPv6
// extension headers hop-by-hop (0), routing (43) and destination options (60) are skipped;
// fragment (44) gives parse_error::fragment. Checksums are not verified here.
std::expected<packet_info, parse_error> parse(std::span<const std::byte> pkt) noexcept;

// The Internet checksum (RFC 1071) of data, folded, NOT complemented, starting from `sum`.
std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::byte> data) noexcept;
// The same sum in host byte order (what lwIP's LWIP_CHKSUM returns), for the lwIP glue.
std::uint16_t checksum_native(std::span<const std::byte> data) noexcept;
std::uint16_t checksum_fold(std::uint32_t sum) noexcept;  // folds carries; returns ~sum & 0xffff
// RFC 1624 eqn. 3: the checksum field after a 16-bit word changed from old_word to new_word.
std::uint16_t checksum_adjust(std::uint16_t field, std::uint16_t old_word, std::uint16_t new_word) noexcept;
// Verifies the TCP or UDP checksum of a parsed packet (pseudo-header included). A UDP over
// IPv4 checksum of zero means "none" and verifies (over IPv6 zero is invalid, RFC 8200 8.1);
// UDP is checked over its length field's bytes.
bool l4_checksum_ok(std::span<const std::byte> pkt, const packet_info& info) noexcept;

// Rewrites source and destination address and port of a TCP or UDP packet in place and
// fixes the IPv4 header checksum and the TCP/UDP checksum incrementally (RFC 1624), also
// updating `info`. Address families must not change (new_src/new_dst have info.version).
// A UDP/IPv4 checksum of zero stays zero. Returns false (packet untouched) if info is not
// TCP/UDP or the families differ.
bool rewrite(std::span<std::byte> pkt, packet_info& info, const ip_address& new_src, std::uint16_t new_sport,
             const ip_address& new_dst, std::uint16_t new_dport) noexcept;

// The MSS option of a TCP packet (SYN) or nullopt; set_tcp_mss() replaces its value in
// place (checksum adjusted) and returns false when the packet has no MSS option. Used with
// TUN segmentation offload, so that lwIP sends large segments the kernel cuts up.
std::optional<std::uint16_t> tcp_mss(std::span<const std::byte> pkt, const packet_info& info) noexcept;
bool set_tcp_mss(std::span<std::byte> pkt, const packet_info& info, std::uint16_t mss) noexcept;
// The folded, NOT complemented pseudo-header sum of a TCP/UDP packet (with its L4 length):
// what the checksum field holds when the kernel completes the checksum (virtio NEEDS_CSUM).
std::uint16_t pseudo_header_partial(const packet_info& info) noexcept;

// Builders. Each writes one complete packet (IP header with TTL/hop limit 64, checksums
// filled) into `out` and returns its length, or 0 if `out` is too small or the request
// is invalid (mixed families, not TCP for a RST) or must not be answered (below).
// A RST answering `to` (a TCP packet we received): from to.dst:dport to to.src:sport, with
// seq/ack chosen per RFC 793 (ACK set when `to` had no ACK). Same IP version as `to`.
// A RST is never answered with a RST (RFC 793): 0 when `to` has RST set.
std::size_t build_tcp_rst(const packet_info& to, std::span<std::byte> out) noexcept;
// A UDP datagram; src and dst must be the same family.
std::size_t build_udp(const ip_address& src, std::uint16_t sport, const ip_address& dst, std::uint16_t dport,
                      std::span<const std::byte> payload, std::span<std::byte> out) noexcept;
// ICMP (v4: type 3, v6: type 1) destination unreachable answering the packet `original`
// (whose parse is `info`), from info.dst to info.src; code is the ICMP
// code (v4: 1 host, 3 port, 13 administratively prohibited; v6: 3 address, 4 port,
// 1 administratively prohibited). Quotes as much of `original` as RFC 792/4443 allow
// (v6: total <= 1280 bytes; v4: IP header + 8 bytes at least, we quote up to 548 bytes).
// An ICMP error is never answered with one (RFC 1122 3.2.2, RFC 4443 2.4(e)): 0 then.
std::size_t build_icmp_unreachable(const packet_info& info, std::span<const std::byte> original, std::uint8_t code,
                                   std::span<std::byte> out) noexcept;

}  // namespace nl::netstack
