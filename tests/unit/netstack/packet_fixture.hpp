// Packet builders and reference checksums shared by the netstack packet tests
// (packet_test.cpp: checksums and parsing; packet_rewrite_test.cpp: rewriting and building).
// The references are written independently of netstack/packet.cpp, byte by byte.
#pragma once

#include "netstack/packet.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

namespace nl::netstack::test {

using bytes = std::vector<std::byte>;

inline bytes hex(std::string_view h) {
  bytes out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i < h.size();) {
    if (h[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<std::byte>(nib(h[i]) * 16 + nib(h[i + 1])));
    i += 2;
  }
  return out;
}

inline unsigned u8(const bytes& p, std::size_t off) { return std::to_integer<unsigned>(p[off]); }
inline unsigned u16(const bytes& p, std::size_t off) { return u8(p, off) << 8 | u8(p, off + 1); }
inline std::uint32_t u32(const bytes& p, std::size_t off) { return std::uint32_t{u16(p, off)} << 16 | u16(p, off + 2); }
inline void set16(bytes& p, std::size_t off, unsigned v) {
  p[off] = static_cast<std::byte>(v >> 8);
  p[off + 1] = static_cast<std::byte>(v);
}
inline void set32(bytes& p, std::size_t off, std::uint32_t v) {
  set16(p, off, v >> 16);
  set16(p, off + 2, v & 0xffff);
}
inline void append(bytes& p, const bytes& q) { p.insert(p.end(), q.begin(), q.end()); }

// The reference Internet checksum (RFC 1071 section 4.1, written out the obvious way):
// 16-bit big-endian words summed in 32 bits, carries folded, complemented.
inline std::uint16_t ref_checksum(const bytes& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    std::uint32_t word = u8(data, i) << 8;
    if (i + 1 < data.size()) {
      word |= u8(data, i + 1);
    }
    sum += word;
  }
  while (sum > 0xffff) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum);
}

inline ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return ip_address::from_v4(std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d);
}
inline ip_address v6(std::string_view s) { return ip_address::from_asio(boost::asio::ip::make_address(std::string(s))); }

inline bytes addr_bytes(const ip_address& a) {
  auto s = std::as_bytes(a.bytes());
  return {s.begin(), s.end()};
}

// The pseudo-header as bytes (RFC 793 for IPv4, RFC 8200 8.1 for IPv6).
inline bytes pseudo(const ip_address& src, const ip_address& dst, unsigned proto, std::size_t len) {
  bytes p = addr_bytes(src);
  append(p, addr_bytes(dst));
  if (!src.v6) {
    append(p, {std::byte{0}, static_cast<std::byte>(proto)});
    p.resize(p.size() + 2);
    set16(p, p.size() - 2, static_cast<unsigned>(len));
  } else {
    p.resize(p.size() + 8);
    set32(p, p.size() - 8, static_cast<std::uint32_t>(len));
    p.back() = static_cast<std::byte>(proto);
  }
  return p;
}

// Transport checksum computed by the reference over pseudo-header + segment.
inline std::uint16_t ref_l4_checksum(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& seg) {
  bytes all = pseudo(src, dst, proto, seg.size());
  append(all, seg);
  return ref_checksum(all);
}

inline bytes tcp_segment(const ip_address& src, const ip_address& dst, unsigned sport, unsigned dport, std::uint32_t seq,
                  std::uint32_t ack, unsigned flags, const bytes& payload, std::size_t options = 0) {
  bytes t(20 + options);
  set16(t, 0, sport);
  set16(t, 2, dport);
  set32(t, 4, seq);
  set32(t, 8, ack);
  t[12] = static_cast<std::byte>(((20 + options) / 4) << 4);
  t[13] = static_cast<std::byte>(flags);
  set16(t, 14, 65535);
  for (std::size_t i = 20; i < t.size(); ++i) {
    t[i] = std::byte{1};  // NOP options
  }
  append(t, payload);
  set16(t, 16, ref_l4_checksum(src, dst, 6, t));
  return t;
}

inline bytes udp_datagram(const ip_address& src, const ip_address& dst, unsigned sport, unsigned dport, const bytes& payload,
                   bool checksum = true) {
  bytes u(8);
  set16(u, 0, sport);
  set16(u, 2, dport);
  set16(u, 4, static_cast<unsigned>(8 + payload.size()));
  append(u, payload);
  if (checksum) {
    auto c = ref_l4_checksum(src, dst, 17, u);
    set16(u, 6, c == 0 ? 0xffff : c);
  }
  return u;
}

inline bytes ipv4(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& l4, std::size_t options = 0) {
  std::size_t hl = 20 + options;
  bytes p(hl);
  p[0] = static_cast<std::byte>(0x40 | hl / 4);
  set16(p, 2, static_cast<unsigned>(hl + l4.size()));
  set16(p, 4, 0x1c46);
  set16(p, 6, 0x4000);
  p[8] = std::byte{64};
  p[9] = static_cast<std::byte>(proto);
  std::copy(src.b.begin(), src.b.begin() + 4, reinterpret_cast<std::uint8_t*>(p.data()) + 12);
  std::copy(dst.b.begin(), dst.b.begin() + 4, reinterpret_cast<std::uint8_t*>(p.data()) + 16);
  set16(p, 10, ref_checksum(p));
  append(p, l4);
  return p;
}

// An IPv6 packet; `ext` are extension headers as (type, total length in bytes) in order.
inline bytes ipv6(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& l4,
           std::vector<std::pair<unsigned, std::size_t>> ext = {}) {
  bytes p(40);
  p[0] = std::byte{0x60};
  p[6] = static_cast<std::byte>(ext.empty() ? proto : ext[0].first);
  p[7] = std::byte{64};
  std::copy(src.b.begin(), src.b.end(), reinterpret_cast<std::uint8_t*>(p.data()) + 8);
  std::copy(dst.b.begin(), dst.b.end(), reinterpret_cast<std::uint8_t*>(p.data()) + 24);
  for (std::size_t i = 0; i < ext.size(); ++i) {
    bytes h(ext[i].second);
    h[0] = static_cast<std::byte>(i + 1 < ext.size() ? ext[i + 1].first : proto);
    h[1] = static_cast<std::byte>(ext[i].second / 8 - 1);
    if (h.size() > 2) {
      h[2] = std::byte{1};  // PadN option
      h[3] = static_cast<std::byte>(h.size() - 4);
    }
    append(p, h);
  }
  append(p, l4);
  set16(p, 4, static_cast<unsigned>(p.size() - 40));
  return p;
}

inline std::span<const std::byte> span_of(const bytes& b) { return b; }

inline const ip_address app4 = v4(10, 0, 0, 2), dest4 = v4(93, 184, 216, 34);
inline const ip_address app6 = v6("fd00::2"), dest6 = v6("2001:db8::34");

inline packet_info parse_ok(const bytes& p) {
  auto r = parse(p);
  INFO("parse error: " << (r ? "" : to_string(r.error())));
  REQUIRE(r.has_value());
  return *r;
}

inline bool ipv4_header_ok(const bytes& p) { return ref_checksum(bytes(p.begin(), p.begin() + (u8(p, 0) & 0xf) * 4)) == 0; }

}  // namespace nl::netstack::test
