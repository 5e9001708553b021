#include "netstack/packet.hpp"

#include <bit>

#include <algorithm>
#include <cstring>

namespace nl::netstack {

namespace {

constexpr std::size_t ipv4_header_min = 20;
constexpr std::size_t ipv6_header = 40;
constexpr std::size_t tcp_header_min = 20;
constexpr std::size_t udp_header = 8;
constexpr std::size_t icmp_header = 8;
constexpr std::uint8_t default_ttl = 64;

// IPv6 extension headers (RFC 8200 section 4 and the IANA registry).
constexpr std::uint8_t v6_hop_by_hop = 0;
constexpr std::uint8_t v6_routing = 43;
constexpr std::uint8_t v6_fragment = 44;
constexpr std::uint8_t v6_dest_opts = 60;

// Extension headers we recognise but do not walk: ESP, AH, mobility, HIP, shim6 and the
// two experimental values.
bool unhandled_v6_extension(std::uint8_t nh) noexcept {
  switch (nh) {
    case 50:
    case 51:
    case 135:
    case 139:
    case 140:
    case 253:
    case 254:
      return true;
    default:
      return false;
  }
}

// Big-endian loads and stores; callers check bounds first.
std::uint8_t get8(std::span<const std::byte> p, std::size_t off) noexcept { return std::to_integer<std::uint8_t>(p[off]); }
std::uint16_t get16(std::span<const std::byte> p, std::size_t off) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[off]) << 8) | std::to_integer<unsigned>(p[off + 1]));
}
std::uint32_t get32(std::span<const std::byte> p, std::size_t off) noexcept {
  return (std::uint32_t{get16(p, off)} << 16) | get16(p, off + 2);
}
void put8(std::span<std::byte> p, std::size_t off, std::uint8_t v) noexcept { p[off] = std::byte{v}; }
void put16(std::span<std::byte> p, std::size_t off, std::uint16_t v) noexcept {
  p[off] = static_cast<std::byte>(v >> 8);
  p[off + 1] = static_cast<std::byte>(v & 0xff);
}
void put32(std::span<std::byte> p, std::size_t off, std::uint32_t v) noexcept {
  put16(p, off, static_cast<std::uint16_t>(v >> 16));
  put16(p, off + 2, static_cast<std::uint16_t>(v & 0xffff));
}
void put_addr(std::span<std::byte> p, std::size_t off, const ip_address& a) noexcept {
  std::memcpy(p.data() + off, a.b.data(), a.size());
}
ip_address get_addr(std::span<const std::byte> p, std::size_t off, bool v6) noexcept {
  ip_address a;
  a.v6 = v6;
  std::memcpy(a.b.data(), p.data() + off, v6 ? 16 : 4);
  return a;
}

std::span<const std::byte> as_bytes(const ip_address& a) noexcept { return std::as_bytes(a.bytes()); }

// The sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793/768 for IPv4, RFC 8200 8.1 for IPv6).
std::uint32_t pseudo_header_sum(const ip_address& src, const ip_address& dst, std::uint8_t proto,
                                std::size_t l4_length) noexcept {
  std::uint32_t sum = checksum_add(0, as_bytes(src));
  sum = checksum_add(sum, as_bytes(dst));
  auto len = static_cast<std::uint32_t>(l4_length);
  return sum + proto + (len >> 16) + (len & 0xffff);
}

// Offset of the checksum field within the transport header, or 0 for neither TCP nor UDP.
std::size_t l4_checksum_field(std::uint8_t proto) noexcept {
  return proto == ipproto::tcp ? 16 : proto == ipproto::udp ? 6 : 0;
}

std::expected<packet_info, parse_error> parse_transport(std::span<const std::byte> pkt, packet_info info) noexcept {
  auto l4 = pkt.subspan(info.l4_offset, info.l4_length);
  if (info.proto == ipproto::tcp) {
    if (l4.size() < tcp_header_min) {
      return std::unexpected(parse_error::truncated);
    }
    std::size_t doff = std::size_t{get8(l4, 12)} >> 4;
    if (doff < 5) {
      return std::unexpected(parse_error::bad_header);
    }
    if (doff * 4 > l4.size()) {
      return std::unexpected(parse_error::truncated);
    }
    info.sport = get16(l4, 0);
    info.dport = get16(l4, 2);
    info.seq = get32(l4, 4);
    info.ack = get32(l4, 8);
    info.tcp_flags = get8(l4, 13);
    info.payload_offset = info.l4_offset + doff * 4;
    info.payload_length = l4.size() - doff * 4;
  } else if (info.proto == ipproto::udp) {
    if (l4.size() < udp_header) {
      return std::unexpected(parse_error::truncated);
    }
    std::size_t ulen = get16(l4, 4);
    if (ulen < udp_header || ulen > l4.size()) {
      return std::unexpected(parse_error::bad_header);
    }
    info.sport = get16(l4, 0);
    info.dport = get16(l4, 2);
    info.payload_offset = info.l4_offset + udp_header;
    info.payload_length = ulen - udp_header;
  }
  return info;
}

std::expected<packet_info, parse_error> parse_v4(std::span<const std::byte> pkt) noexcept {
  if (pkt.size() < ipv4_header_min) {
    return std::unexpected(parse_error::truncated);
  }
  std::size_t hlen = (std::size_t{get8(pkt, 0)} & 0x0f) * 4;
  if (hlen < ipv4_header_min) {
    return std::unexpected(parse_error::bad_header);
  }
  std::size_t total = get16(pkt, 2);
  if (hlen > pkt.size() || total > pkt.size()) {
    return std::unexpected(parse_error::truncated);
  }
  if (total < hlen) {
    return std::unexpected(parse_error::bad_header);
  }
  std::uint16_t frag = get16(pkt, 6);
  if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) {
    return std::unexpected(parse_error::fragment);
  }
  packet_info info;
  info.version = 4;
  info.proto = get8(pkt, 9);
  info.src = get_addr(pkt, 12, false);
  info.dst = get_addr(pkt, 16, false);
  info.l4_offset = hlen;
  info.l4_length = total - hlen;
  info.total_length = total;
  return parse_transport(pkt, info);
}

std::expected<packet_info, parse_error> parse_v6(std::span<const std::byte> pkt) noexcept {
  if (pkt.size() < ipv6_header) {
    return std::unexpected(parse_error::truncated);
  }
  std::size_t total = ipv6_header + get16(pkt, 4);
  if (total > pkt.size()) {
    return std::unexpected(parse_error::truncated);
  }
  std::uint8_t nh = get8(pkt, 6);
  std::size_t off = ipv6_header;
  // Each extension header is at least 8 bytes, so this walk ends within total/8 steps.
  for (;;) {
    if (nh == v6_hop_by_hop || nh == v6_routing || nh == v6_dest_opts) {
      if (total - off < 8) {
        return std::unexpected(parse_error::truncated);
      }
      std::size_t len = (std::size_t{get8(pkt, off + 1)} + 1) * 8;
      if (total - off < len) {
        return std::unexpected(parse_error::truncated);
      }
      nh = get8(pkt, off);
      off += len;
      continue;
    }
    if (nh == v6_fragment) {
      return std::unexpected(parse_error::fragment);
    }
    if (unhandled_v6_extension(nh)) {
      return std::unexpected(parse_error::unsupported);
    }
    break;
  }
  packet_info info;
  info.version = 6;
  info.proto = nh;
  info.src = get_addr(pkt, 8, true);
  info.dst = get_addr(pkt, 24, true);
  info.l4_offset = off;
  info.l4_length = total - off;
  info.total_length = total;
  return parse_transport(pkt, info);
}

// Writes an IPv4 header (no options, DF set: an atomic datagram, so ID 0 is fine per
// RFC 6864) or an IPv6 header for a transport payload of l4_length bytes.
void put_ip_header(std::span<std::byte> out, const ip_address& src, const ip_address& dst, std::uint8_t proto,
                   std::size_t l4_length) noexcept {
  if (!src.v6) {
    std::memset(out.data(), 0, ipv4_header_min);
    put8(out, 0, 0x45);
    put16(out, 2, static_cast<std::uint16_t>(ipv4_header_min + l4_length));
    put16(out, 6, 0x4000);
    put8(out, 8, default_ttl);
    put8(out, 9, proto);
    put_addr(out, 12, src);
    put_addr(out, 16, dst);
    put16(out, 10, checksum_fold(checksum_add(0, out.first(ipv4_header_min))));
  } else {
    std::memset(out.data(), 0, ipv6_header);
    put8(out, 0, 0x60);
    put16(out, 4, static_cast<std::uint16_t>(l4_length));
    put8(out, 6, proto);
    put8(out, 7, default_ttl);
    put_addr(out, 8, src);
    put_addr(out, 24, dst);
  }
}

std::size_t ip_header_size(bool v6) noexcept { return v6 ? ipv6_header : ipv4_header_min; }

// The largest transport length an IP header of that family can describe.
constexpr std::size_t max_l4_length(bool v6) noexcept { return v6 ? 0xffff : 0xffff - ipv4_header_min; }

bool same_family(const ip_address& a, const ip_address& b) noexcept { return a.v6 == b.v6; }

}  // namespace

std::string_view to_string(parse_error e) noexcept {
  switch (e) {
    case parse_error::truncated: return "truncated";
    case parse_error::bad_version: return "bad IP version";
    case parse_error::bad_header: return "bad header";
    case parse_error::fragment: return "fragment";
    case parse_error::unsupported: return "unsupported header";
  }
  return "unknown parse error";
}

std::expected<packet_info, parse_error> parse(std::span<const std::byte> pkt) noexcept {
  if (pkt.empty()) {
    return std::unexpected(parse_error::truncated);
  }
  switch (get8(pkt, 0) >> 4) {
    case 4: return parse_v4(pkt);
    case 6: return parse_v6(pkt);
    default: return std::unexpected(parse_error::bad_version);
  }
}

// RFC 1071 sums are byte-order independent: summing native 32-bit words into a 64-bit
// accumulator and folding gives the sum in host order, byte-swapped once at the end on a
// little-endian host. Eight bytes per step instead of two.
std::uint16_t checksum_native(std::span<const std::byte> data) noexcept {
  std::uint64_t acc = 0;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    acc += (w & 0xffffffffu) + (w >> 32);
  }
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    std::uint16_t w = 0;
    std::memcpy(&w, p, 1);  // an odd last byte is padded with zero (in memory order)
    acc += w;
  }
  while (acc >> 16) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return static_cast<std::uint16_t>(acc);
}

std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::byte> data) noexcept {
  std::uint16_t native = checksum_native(data);
  std::uint32_t be = std::endian::native == std::endian::little ? static_cast<std::uint16_t>((native >> 8) | (native << 8))
                                                                  : native;
  std::uint64_t acc = std::uint64_t{sum} + be;
  while (acc >> 16) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return static_cast<std::uint32_t>(acc);
}

std::uint16_t checksum_fold(std::uint32_t sum) noexcept {
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint16_t checksum_adjust(std::uint16_t field, std::uint16_t old_word, std::uint16_t new_word) noexcept {
  // HC' = ~(~HC + ~m + m')
  std::uint32_t sum = std::uint32_t{static_cast<std::uint16_t>(~field)} + static_cast<std::uint16_t>(~old_word) + new_word;
  return checksum_fold(sum);
}

bool l4_checksum_ok(std::span<const std::byte> pkt, const packet_info& info) noexcept {
  std::size_t field = l4_checksum_field(info.proto);
  if (field == 0 || info.l4_offset > pkt.size() || info.l4_length > pkt.size() - info.l4_offset ||
      info.l4_length < field + 2 || info.src.v6 != info.dst.v6) {
    return false;
  }
  auto l4 = pkt.subspan(info.l4_offset, info.l4_length);
  std::uint16_t stored = get16(l4, field);
  if (info.proto == ipproto::udp && stored == 0) {
    return !info.src.v6;  // "no checksum" exists for IPv4 only (RFC 768 vs RFC 8200 8.1)
  }
  // UDP covers its own length field's worth of bytes; the rest of the IP payload is padding.
  std::size_t len = info.l4_length;
  if (info.proto == ipproto::udp) {
    len = std::min<std::size_t>(len, get16(l4, 4));
  }
  std::uint32_t sum = pseudo_header_sum(info.src, info.dst, info.proto, len);
  return checksum_fold(checksum_add(sum, l4.first(len))) == 0;
}

namespace {
// Offset of the MSS option's value in a parsed TCP packet, or 0.
std::size_t mss_option_at(std::span<const std::byte> pkt, const packet_info& info) noexcept {
  if (info.proto != ipproto::tcp || info.payload_offset > pkt.size()) return 0;
  std::size_t i = info.l4_offset + tcp_header_min, end = info.payload_offset;
  while (i < end) {
    auto kind = get8(pkt, i);
    if (kind == 0) break;      // end of options
    if (kind == 1) {           // no-op
      ++i;
      continue;
    }
    if (i + 1 >= end) break;
    std::size_t len = get8(pkt, i + 1);
    if (len < 2 || i + len > end) break;
    if (kind == 2 && len == 4) return i + 2;
    i += len;
  }
  return 0;
}
}  // namespace

std::optional<std::uint16_t> tcp_mss(std::span<const std::byte> pkt, const packet_info& info) noexcept {
  auto at = mss_option_at(pkt, info);
  if (!at) return std::nullopt;
  return get16(pkt, at);
}

bool set_tcp_mss(std::span<std::byte> pkt, const packet_info& info, std::uint16_t mss) noexcept {
  auto at = mss_option_at(pkt, info);
  if (!at) return false;
  // Options start at an even offset of the TCP header only if `at` is even; the sum works on
  // 16-bit words aligned to the header, so adjust the word(s) that hold the value.
  std::size_t field = info.l4_offset + 16;
  if ((at - info.l4_offset) % 2 == 0) {
    auto old = get16(pkt, at);
    put16(pkt, at, mss);
    put16(pkt, field, checksum_adjust(get16(pkt, field), old, mss));
  } else {
    auto w0 = at - 1, w1 = at + 1;  // the value straddles two aligned words
    auto old0 = get16(pkt, w0), old1 = get16(pkt, w1);
    put16(pkt, at, mss);
    auto sum = checksum_adjust(get16(pkt, field), old0, get16(pkt, w0));
    put16(pkt, field, checksum_adjust(sum, old1, get16(pkt, w1)));
  }
  return true;
}

std::uint16_t pseudo_header_partial(const packet_info& info) noexcept {
  auto sum = pseudo_header_sum(info.src, info.dst, info.proto, info.l4_length);
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(sum);
}

bool rewrite(std::span<std::byte> pkt, packet_info& info, const ip_address& new_src, std::uint16_t new_sport,
             const ip_address& new_dst, std::uint16_t new_dport) noexcept {
  std::size_t field = l4_checksum_field(info.proto);
  bool v6 = info.version == 6;
  if (field == 0 || (info.version != 4 && !v6) || new_src.v6 != v6 || new_dst.v6 != v6) {
    return false;
  }
  std::size_t l4 = info.l4_offset;
  if (l4 < ip_header_size(v6) || l4 > pkt.size() || pkt.size() - l4 < field + 2) {
    return false;
  }
  std::span<const std::byte> cpkt = pkt;
  bool udp = info.proto == ipproto::udp;
  std::uint16_t l4sum = get16(cpkt, l4 + field);
  bool fix_l4 = !(udp && !v6 && l4sum == 0);
  std::uint16_t ipsum = v6 ? 0 : get16(cpkt, 10);

  // Every changed 16-bit word of the addresses (in the IP header and the pseudo-header).
  auto change_addr = [&](std::size_t off, const ip_address& a) {
    for (std::size_t i = 0; i < a.size(); i += 2) {
      std::uint16_t old_word = get16(cpkt, off + i);
      std::uint16_t new_word = static_cast<std::uint16_t>((a.b[i] << 8) | a.b[i + 1]);
      if (old_word == new_word) {
        continue;
      }
      if (!v6) {
        ipsum = checksum_adjust(ipsum, old_word, new_word);
      }
      if (fix_l4) {
        l4sum = checksum_adjust(l4sum, old_word, new_word);
      }
      put16(pkt, off + i, new_word);
    }
  };
  auto change_port = [&](std::size_t off, std::uint16_t port) {
    std::uint16_t old_port = get16(cpkt, off);
    if (old_port != port && fix_l4) {
      l4sum = checksum_adjust(l4sum, old_port, port);
    }
    put16(pkt, off, port);
  };
  change_addr(v6 ? 8 : 12, new_src);
  change_addr(v6 ? 24 : 16, new_dst);
  change_port(l4, new_sport);
  change_port(l4 + 2, new_dport);
  if (!v6) {
    put16(pkt, 10, ipsum);
  }
  if (fix_l4) {
    if (udp && l4sum == 0) {
      l4sum = 0xffff;  // 0 would mean "no checksum" (RFC 768)
    }
    put16(pkt, l4 + field, l4sum);
  }
  info.src = new_src;
  info.dst = new_dst;
  info.sport = new_sport;
  info.dport = new_dport;
  return true;
}

std::size_t build_tcp_rst(const packet_info& to, std::span<std::byte> out) noexcept {
  bool v6 = to.version == 6;
  if (to.proto != ipproto::tcp || (to.version != 4 && !v6) || to.src.v6 != v6 || to.dst.v6 != v6 ||
      (to.tcp_flags & tcpflag::rst) != 0) {
    return 0;
  }
  std::size_t ip = ip_header_size(v6);
  std::size_t n = ip + tcp_header_min;
  if (out.size() < n) {
    return 0;
  }
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = tcpflag::rst;
  if ((to.tcp_flags & tcpflag::ack) != 0) {
    seq = to.ack;
  } else {
    flags |= tcpflag::ack;
    ack = to.seq + static_cast<std::uint32_t>(to.payload_length) + ((to.tcp_flags & tcpflag::syn) ? 1u : 0u) +
          ((to.tcp_flags & tcpflag::fin) ? 1u : 0u);
  }
  put_ip_header(out, to.dst, to.src, ipproto::tcp, tcp_header_min);
  auto tcp = out.subspan(ip, tcp_header_min);
  std::memset(tcp.data(), 0, tcp.size());
  put16(tcp, 0, to.dport);
  put16(tcp, 2, to.sport);
  put32(tcp, 4, seq);
  put32(tcp, 8, ack);
  put8(tcp, 12, 5 << 4);
  put8(tcp, 13, flags);
  std::uint32_t sum = pseudo_header_sum(to.dst, to.src, ipproto::tcp, tcp_header_min);
  put16(tcp, 16, checksum_fold(checksum_add(sum, tcp)));
  return n;
}

std::size_t build_udp(const ip_address& src, std::uint16_t sport, const ip_address& dst, std::uint16_t dport,
                      std::span<const std::byte> payload, std::span<std::byte> out) noexcept {
  if (!same_family(src, dst) || payload.size() > 0xffff - udp_header ||
      payload.size() + udp_header > max_l4_length(src.v6)) {
    return 0;
  }
  std::size_t ip = ip_header_size(src.v6);
  std::size_t l4_length = udp_header + payload.size();
  if (out.size() < ip + l4_length) {
    return 0;
  }
  put_ip_header(out, src, dst, ipproto::udp, l4_length);
  auto udp = out.subspan(ip, l4_length);
  put16(udp, 0, sport);
  put16(udp, 2, dport);
  put16(udp, 4, static_cast<std::uint16_t>(l4_length));
  put16(udp, 6, 0);
  if (!payload.empty()) {
    std::memmove(udp.data() + udp_header, payload.data(), payload.size());
  }
  std::uint16_t sum = checksum_fold(checksum_add(pseudo_header_sum(src, dst, ipproto::udp, l4_length), udp));
  put16(udp, 6, sum == 0 ? 0xffff : sum);
  return ip + l4_length;
}

std::size_t build_icmp_unreachable(const packet_info& info, std::span<const std::byte> original, std::uint8_t code,
                                   std::span<std::byte> out) noexcept {
  bool v6 = info.version == 6;
  if ((info.version != 4 && !v6) || info.src.v6 != v6 || info.dst.v6 != v6) {
    return 0;
  }
  // Never an error about an ICMP error (RFC 1122 3.2.2, RFC 4443 2.4(e)).
  if (info.proto == (v6 ? ipproto::icmpv6 : ipproto::icmp) && info.l4_offset < original.size()) {
    std::uint8_t type = get8(original, info.l4_offset);
    if (v6 ? type < 128 : (type == 3 || type == 4 || type == 5 || type == 11 || type == 12)) {
      return 0;
    }
  }
  // RFC 792 asks for the IP header + 8 bytes; we quote up to 576 - 28 = 548 bytes. RFC 4443
  // 2.4(c): as much as fits in the minimum MTU of 1280 bytes.
  std::size_t ip = ip_header_size(v6);
  std::size_t quote = std::min({info.total_length, original.size(), v6 ? std::size_t{1280} - ip - icmp_header
                                                                        : std::size_t{548}});
  std::size_t l4_length = icmp_header + quote;
  if (out.size() < ip + l4_length) {
    return 0;
  }
  std::uint8_t proto = v6 ? ipproto::icmpv6 : ipproto::icmp;
  put_ip_header(out, info.dst, info.src, proto, l4_length);
  auto icmp = out.subspan(ip, l4_length);
  put8(icmp, 0, v6 ? 1 : 3);
  put8(icmp, 1, code);
  put16(icmp, 2, 0);
  put32(icmp, 4, 0);  // unused (v4: no next-hop MTU; v6: unused)
  if (quote != 0) {
    std::memmove(icmp.data() + icmp_header, original.data(), quote);
  }
  std::uint32_t sum = v6 ? pseudo_header_sum(info.dst, info.src, proto, l4_length) : 0;
  put16(icmp, 2, checksum_fold(checksum_add(sum, icmp)));
  return ip + l4_length;
}

}  // namespace nl::netstack
