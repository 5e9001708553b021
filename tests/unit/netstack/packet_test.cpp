#include "netstack/packet.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

using namespace nl::netstack;

namespace {

using bytes = std::vector<std::byte>;

bytes hex(std::string_view h) {
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

unsigned u8(const bytes& p, std::size_t off) { return std::to_integer<unsigned>(p[off]); }
unsigned u16(const bytes& p, std::size_t off) { return u8(p, off) << 8 | u8(p, off + 1); }
std::uint32_t u32(const bytes& p, std::size_t off) { return std::uint32_t{u16(p, off)} << 16 | u16(p, off + 2); }
void set16(bytes& p, std::size_t off, unsigned v) {
  p[off] = static_cast<std::byte>(v >> 8);
  p[off + 1] = static_cast<std::byte>(v);
}
void set32(bytes& p, std::size_t off, std::uint32_t v) {
  set16(p, off, v >> 16);
  set16(p, off + 2, v & 0xffff);
}
void append(bytes& p, const bytes& q) { p.insert(p.end(), q.begin(), q.end()); }

// The reference Internet checksum (RFC 1071 section 4.1, written out the obvious way):
// 16-bit big-endian words summed in 32 bits, carries folded, complemented.
std::uint16_t ref_checksum(const bytes& data) {
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

ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return ip_address::from_v4(std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d);
}
ip_address v6(std::string_view s) { return ip_address::from_asio(boost::asio::ip::make_address(std::string(s))); }

bytes addr_bytes(const ip_address& a) {
  auto s = std::as_bytes(a.bytes());
  return {s.begin(), s.end()};
}

// The pseudo-header as bytes (RFC 793 for IPv4, RFC 8200 8.1 for IPv6).
bytes pseudo(const ip_address& src, const ip_address& dst, unsigned proto, std::size_t len) {
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
std::uint16_t ref_l4_checksum(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& seg) {
  bytes all = pseudo(src, dst, proto, seg.size());
  append(all, seg);
  return ref_checksum(all);
}

bytes tcp_segment(const ip_address& src, const ip_address& dst, unsigned sport, unsigned dport, std::uint32_t seq,
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

bytes udp_datagram(const ip_address& src, const ip_address& dst, unsigned sport, unsigned dport, const bytes& payload,
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

bytes ipv4(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& l4, std::size_t options = 0) {
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
bytes ipv6(const ip_address& src, const ip_address& dst, unsigned proto, const bytes& l4,
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

std::span<const std::byte> span_of(const bytes& b) { return b; }

const ip_address app4 = v4(10, 0, 0, 2), dest4 = v4(93, 184, 216, 34);
const ip_address app6 = v6("fd00::2"), dest6 = v6("2001:db8::34");

packet_info parse_ok(const bytes& p) {
  auto r = parse(p);
  INFO("parse error: " << (r ? "" : to_string(r.error())));
  REQUIRE(r.has_value());
  return *r;
}

bool ipv4_header_ok(const bytes& p) { return ref_checksum(bytes(p.begin(), p.begin() + (u8(p, 0) & 0xf) * 4)) == 0; }

}  // namespace

TEST_CASE("checksum: the RFC 1071 example", "[packet][checksum]") {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (one's complement, folded).
  auto data = hex("0001 f203 f4f5 f6f7");
  CHECK(checksum_add(0, data) == 0xddf2);
  CHECK(checksum_fold(checksum_add(0, data)) == 0x220d);
  CHECK(ref_checksum(data) == 0x220d);
  // The sum is the same in pieces (even split) and byte-swapped order is the same folded.
  CHECK(checksum_add(checksum_add(0, span_of(data).first(4)), span_of(data).subspan(4)) == 0xddf2);
  CHECK(checksum_fold(0) == 0xffff);
  CHECK(checksum_fold(0xffff) == 0);
  CHECK(checksum_fold(0x1fffe) == 0);  // 0xfffe + 1 carry
}

TEST_CASE("checksum: odd lengths pad with a zero byte", "[packet][checksum]") {
  auto data = hex("0102 0304 05");
  CHECK(checksum_add(0, data) == 0x0102 + 0x0304 + 0x0500);
  CHECK(checksum_fold(checksum_add(0, data)) == ref_checksum(data));
  CHECK(checksum_add(0, {}) == 0);
  CHECK(checksum_add(0x12345, {}) == 0x2346);  // folded
}

TEST_CASE("checksum: a captured IPv4 TCP SYN header", "[packet][checksum]") {
  // A SYN from 172.16.10.99 to 172.16.10.12 (total length 60: 20 + 40 bytes of TCP with
  // options); the header checksum on the wire is b1e6.
  auto header = hex("4500 003c 1c46 4000 4006 b1e6 ac10 0a63 ac10 0a0c");
  CHECK(ref_checksum(header) == 0);
  CHECK(checksum_fold(checksum_add(0, header)) == 0);
  auto zeroed = header;
  set16(zeroed, 10, 0);
  CHECK(ref_checksum(zeroed) == 0xb1e6);
  CHECK(checksum_fold(checksum_add(0, zeroed)) == 0xb1e6);
}

TEST_CASE("checksum: random data agrees with the reference", "[packet][checksum]") {
  std::mt19937 rng(1071);
  for (int iter = 0; iter < 300; ++iter) {
    bytes data(rng() % 1600);
    for (auto& b : data) {
      b = static_cast<std::byte>(rng());
    }
    CHECK(checksum_fold(checksum_add(0, data)) == ref_checksum(data));
  }
}

TEST_CASE("checksum_adjust follows RFC 1624 eqn 3", "[packet][checksum]") {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 2000; ++iter) {
    bytes data(2 * (1 + rng() % 40));
    for (auto& b : data) {
      b = static_cast<std::byte>(rng());
    }
    std::uint16_t before = ref_checksum(data);
    std::size_t at = 2 * (rng() % (data.size() / 2));
    auto old_word = static_cast<std::uint16_t>(u16(data, at));
    auto new_word = static_cast<std::uint16_t>(iter % 7 == 0 ? 0 : rng());
    set16(data, at, new_word);
    std::uint16_t adjusted = checksum_adjust(before, old_word, new_word);
    std::uint16_t recomputed = ref_checksum(data);
    // +0 and -0 are the same one's complement number; everything else must match exactly.
    if (!((adjusted == 0 || adjusted == 0xffff) && (recomputed == 0 || recomputed == 0xffff))) {
      CHECK(adjusted == recomputed);
    }
    // The adjusted field verifies the changed data, unless that is all zeros: its sum is +0,
    // which only a field of 0xffff verifies (no real packet is all zeros with its pseudo-header).
    if (std::all_of(data.begin(), data.end(), [](std::byte x) { return x == std::byte{0}; })) {
      continue;
    }
    bytes with_field = data;
    with_field.push_back(static_cast<std::byte>(adjusted >> 8));
    with_field.push_back(static_cast<std::byte>(adjusted & 0xff));
    CHECK(ref_checksum(with_field) == 0);
  }
  // The RFC 1624 section 4 example: field 0xdd2f, word 0x5555 -> 0x3285 gives 0x0000 by
  // eqn 3 (never -0 = 0xffff, which eqn 2 would give).
  CHECK(checksum_adjust(0xdd2f, 0x5555, 0x3285) == 0x0000);
}

TEST_CASE("parse: IPv4 TCP SYN with options", "[packet][parse]") {
  auto syn = tcp_segment(app4, dest4, 40000, 443, 0x11223344, 0, tcpflag::syn, {}, 20);
  auto p = ipv4(app4, dest4, ipproto::tcp, syn);
  REQUIRE(p.size() == 60);
  auto i = parse_ok(p);
  CHECK(i.version == 4);
  CHECK(i.proto == ipproto::tcp);
  CHECK(i.src == app4);
  CHECK(i.dst == dest4);
  CHECK(i.sport == 40000);
  CHECK(i.dport == 443);
  CHECK(i.seq == 0x11223344);
  CHECK(i.ack == 0);
  CHECK(i.tcp_flags == tcpflag::syn);
  CHECK(i.l4_offset == 20);
  CHECK(i.l4_length == 40);
  CHECK(i.total_length == 60);
  CHECK(i.payload_offset == 60);
  CHECK(i.payload_length == 0);
  CHECK(l4_checksum_ok(p, i));
  CHECK(ipv4_header_ok(p));
}

TEST_CASE("parse: IPv4 with options, UDP and ICMP, trailing bytes", "[packet][parse]") {
  auto u = udp_datagram(app4, dest4, 5353, 53, hex("1234 0100 0001"));
  auto p = ipv4(app4, dest4, ipproto::udp, u, 8);
  p.push_back(std::byte{0xee});  // Ethernet-style padding beyond the total length
  p.push_back(std::byte{0xee});
  auto i = parse_ok(p);
  CHECK(i.l4_offset == 28);
  CHECK(i.total_length == p.size() - 2);
  CHECK(i.sport == 5353);
  CHECK(i.dport == 53);
  CHECK(i.payload_offset == 36);
  CHECK(i.payload_length == 6);
  CHECK(l4_checksum_ok(p, i));

  bytes echo = hex("0800 0000 0001 0001 6162");
  set16(echo, 2, ref_checksum(echo));
  auto e = parse_ok(ipv4(app4, dest4, ipproto::icmp, echo));
  CHECK(e.proto == ipproto::icmp);
  CHECK(e.sport == 0);
  CHECK(e.dport == 0);
  CHECK(e.l4_length == echo.size());

  // Another protocol (GRE) is no error either.
  auto g = parse_ok(ipv4(app4, dest4, 47, hex("0000 0800")));
  CHECK(g.proto == 47);
  CHECK(g.payload_length == 0);
}

TEST_CASE("parse: IPv6 TCP and UDP", "[packet][parse]") {
  auto seg = tcp_segment(app6, dest6, 50000, 22, 7, 9, tcpflag::ack | tcpflag::psh, hex("5353 4800"));
  auto p = ipv6(app6, dest6, ipproto::tcp, seg);
  auto i = parse_ok(p);
  CHECK(i.version == 6);
  CHECK(i.src == app6);
  CHECK(i.dst == dest6);
  CHECK(i.l4_offset == 40);
  CHECK(i.l4_length == 24);
  CHECK(i.payload_offset == 60);
  CHECK(i.payload_length == 4);
  CHECK(i.seq == 7);
  CHECK(i.ack == 9);
  CHECK(i.tcp_flags == (tcpflag::ack | tcpflag::psh));
  CHECK(l4_checksum_ok(p, i));

  auto u = ipv6(app6, dest6, ipproto::udp, udp_datagram(app6, dest6, 1000, 53, hex("aa")));
  auto j = parse_ok(u);
  CHECK(j.proto == ipproto::udp);
  CHECK(j.payload_length == 1);
  CHECK(l4_checksum_ok(u, j));
}

TEST_CASE("parse: IPv6 extension headers", "[packet][parse]") {
  auto u = udp_datagram(app6, dest6, 1000, 53, hex("0102 0304"));
  SECTION("hop-by-hop, routing, destination options are skipped") {
    auto p = ipv6(app6, dest6, ipproto::udp, u, {{0, 8}, {43, 24}, {60, 16}});
    auto i = parse_ok(p);
    CHECK(i.proto == ipproto::udp);
    CHECK(i.l4_offset == 40 + 8 + 24 + 16);
    CHECK(i.l4_length == u.size());
    CHECK(i.dport == 53);
    CHECK(l4_checksum_ok(p, i));
  }
  SECTION("ICMPv6 after hop-by-hop (MLD style)") {
    auto i = parse_ok(ipv6(app6, dest6, ipproto::icmpv6, hex("8f00 0000 0000 0000"), {{0, 8}}));
    CHECK(i.proto == ipproto::icmpv6);
    CHECK(i.l4_offset == 48);
  }
  SECTION("no next header") {
    auto i = parse_ok(ipv6(app6, dest6, 59, {}, {{60, 8}}));
    CHECK(i.proto == 59);
    CHECK(i.l4_length == 0);
  }
  SECTION("a fragment header") {
    auto r = parse(ipv6(app6, dest6, ipproto::udp, u, {{0, 8}, {44, 8}}));
    REQUIRE(!r);
    CHECK(r.error() == parse_error::fragment);
  }
  SECTION("AH and ESP are unsupported") {
    for (unsigned t : {51u, 50u}) {
      auto r = parse(ipv6(app6, dest6, ipproto::udp, u, {{t, 16}}));
      REQUIRE(!r);
      CHECK(r.error() == parse_error::unsupported);
    }
  }
  SECTION("an extension header running past the payload") {
    auto p = ipv6(app6, dest6, ipproto::udp, {}, {{60, 8}});
    p[40 + 1] = std::byte{3};  // claims 32 bytes, 8 present
    auto r = parse(p);
    REQUIRE(!r);
    CHECK(r.error() == parse_error::truncated);
    auto s = parse(ipv6(app6, dest6, 0, {}));  // hop-by-hop announced, no room for it
    REQUIRE(!s);
    CHECK(s.error() == parse_error::truncated);
  }
}

TEST_CASE("parse: malformed headers", "[packet][parse]") {
  auto syn = ipv4(app4, dest4, ipproto::tcp, tcp_segment(app4, dest4, 1, 2, 3, 0, tcpflag::syn, {}));
  auto udp = ipv4(app4, dest4, ipproto::udp, udp_datagram(app4, dest4, 1, 2, hex("00112233")));
  auto udp6 = ipv6(app6, dest6, ipproto::udp, udp_datagram(app6, dest6, 1, 2, hex("00112233")));
  struct row {
    const char* what;
    bytes packet;
    std::function<void(bytes&)> edit;
    parse_error want;
  };
  std::vector<row> rows = {
      {"empty", {}, [](bytes&) {}, parse_error::truncated},
      {"version 5", syn, [](bytes& p) { p[0] = std::byte{0x55}; }, parse_error::bad_version},
      {"version 0", syn, [](bytes& p) { p[0] = std::byte{0x05}; }, parse_error::bad_version},
      {"IHL 4", syn, [](bytes& p) { p[0] = std::byte{0x44}; }, parse_error::bad_header},
      {"IHL 15 beyond the buffer", syn, [](bytes& p) { p[0] = std::byte{0x4f}; }, parse_error::truncated},
      {"total length < header", syn, [](bytes& p) { set16(p, 2, 19); }, parse_error::bad_header},
      {"total length > buffer", syn, [](bytes& p) { set16(p, 2, static_cast<unsigned>(p.size() + 1)); },
       parse_error::truncated},
      {"MF set", syn, [](bytes& p) { set16(p, 6, 0x2000); }, parse_error::fragment},
      {"offset set", syn, [](bytes& p) { set16(p, 6, 0x4001); }, parse_error::fragment},
      {"last fragment", syn, [](bytes& p) { set16(p, 6, 0x00b9); }, parse_error::fragment},
      {"TCP data offset 4", syn, [](bytes& p) { p[20 + 12] = std::byte{0x40}; }, parse_error::bad_header},
      {"TCP data offset past the segment", syn, [](bytes& p) { p[20 + 12] = std::byte{0x60}; },
       parse_error::truncated},
      {"TCP shorter than 20", syn, [](bytes& p) { set16(p, 2, 39); }, parse_error::truncated},
      {"UDP length 7", udp, [](bytes& p) { set16(p, 24, 7); }, parse_error::bad_header},
      {"UDP length past the IP payload", udp, [](bytes& p) { set16(p, 24, 13); }, parse_error::bad_header},
      {"UDP shorter than 8", udp, [](bytes& p) { set16(p, 2, 27); }, parse_error::truncated},
      {"UDPv6 length past the IP payload", udp6, [](bytes& p) { set16(p, 44, 13); }, parse_error::bad_header},
      {"IPv6 payload length > buffer", udp6, [](bytes& p) { set16(p, 4, 13); }, parse_error::truncated},
      {"IPv6 header cut", udp6, [](bytes& p) { p.resize(39); }, parse_error::truncated},
  };
  for (auto& r : rows) {
    INFO(r.what);
    r.edit(r.packet);
    auto res = parse(r.packet);
    REQUIRE(!res);
    CHECK(res.error() == r.want);
    CHECK(!to_string(res.error()).empty());
  }
}

TEST_CASE("parse: UDP length shorter than the IP payload", "[packet][parse]") {
  // The UDP length rules the payload; the rest of the IP payload is padding.
  auto u = udp_datagram(app4, dest4, 1, 2, hex("0102 0304"));
  u.push_back(std::byte{0xff});
  u.push_back(std::byte{0xff});
  auto p = ipv4(app4, dest4, ipproto::udp, u);
  auto i = parse_ok(p);
  CHECK(i.l4_length == 14);
  CHECK(i.payload_length == 4);
  CHECK(l4_checksum_ok(p, i));  // the checksum covers the UDP length only
}

TEST_CASE("parse: every truncation of a valid packet", "[packet][parse]") {
  std::vector<bytes> packets = {
      ipv4(app4, dest4, ipproto::tcp, tcp_segment(app4, dest4, 1, 2, 3, 4, tcpflag::ack, hex("0102 03"), 12), 4),
      ipv4(app4, dest4, ipproto::udp, udp_datagram(app4, dest4, 1, 2, hex("0102 0304 05"))),
      ipv4(app4, dest4, ipproto::icmp, hex("0800 f7fc 0001 0002")),
      ipv6(app6, dest6, ipproto::tcp, tcp_segment(app6, dest6, 1, 2, 3, 4, tcpflag::syn, {}, 8), {{0, 8}, {60, 16}}),
      ipv6(app6, dest6, ipproto::udp, udp_datagram(app6, dest6, 1, 2, hex("0102")), {{43, 24}}),
      ipv6(app6, dest6, ipproto::icmpv6, hex("8000 0000 0001 0002")),
  };
  for (const auto& full : packets) {
    auto whole = parse_ok(full);
    for (std::size_t n = 0; n < full.size(); ++n) {
      // A copy of exactly n bytes, so a sanitizer sees any read past it.
      bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      auto r = parse(cut);
      INFO("length " << n << " of " << full.size());
      REQUIRE(!r);
      CHECK(r.error() == parse_error::truncated);
    }
    // Extra bytes after the packet are ignored.
    bytes longer = full;
    longer.resize(full.size() + 5, std::byte{0xaa});
    auto l = parse_ok(longer);
    CHECK(l.total_length == whole.total_length);
    CHECK(l.payload_length == whole.payload_length);
  }
}

TEST_CASE("l4_checksum_ok", "[packet][checksum]") {
  auto t4 = ipv4(app4, dest4, ipproto::tcp, tcp_segment(app4, dest4, 1, 2, 3, 4, tcpflag::ack, hex("010203")));
  auto u6 = ipv6(app6, dest6, ipproto::udp, udp_datagram(app6, dest6, 1, 2, hex("0102")));
  for (auto* p : {&t4, &u6}) {
    auto i = parse_ok(*p);
    CHECK(l4_checksum_ok(*p, i));
    for (std::size_t at = i.l4_offset; at < p->size(); ++at) {
      auto bad = *p;
      bad[at] ^= std::byte{0x10};
      CHECK_FALSE(l4_checksum_ok(bad, i));
    }
    // The addresses are covered by the pseudo-header.
    auto moved = i;
    moved.dst = i.src.v6 ? v6("::1") : v4(1, 2, 3, 4);
    CHECK_FALSE(l4_checksum_ok(*p, moved));
  }
  // UDP over IPv4 without a checksum verifies; over IPv6 a zero checksum is invalid.
  auto none4 = ipv4(app4, dest4, ipproto::udp, udp_datagram(app4, dest4, 1, 2, hex("0102"), false));
  CHECK(l4_checksum_ok(none4, parse_ok(none4)));
  auto none6 = ipv6(app6, dest6, ipproto::udp, udp_datagram(app6, dest6, 1, 2, hex("0102"), false));
  CHECK_FALSE(l4_checksum_ok(none6, parse_ok(none6)));
  // ICMP is not TCP/UDP.
  auto icmp = ipv4(app4, dest4, ipproto::icmp, hex("0800 f7fc 0001 0002"));
  CHECK_FALSE(l4_checksum_ok(icmp, parse_ok(icmp)));
}

namespace {

ip_address random_addr(std::mt19937& rng, bool is_v6) {
  ip_address a;
  a.v6 = is_v6;
  for (std::size_t i = 0; i < a.size(); ++i) {
    a.b[i] = static_cast<std::uint8_t>(rng());
  }
  if (rng() % 4 == 0) {
    a.b[0] = 0;  // some words that stay the same or become zero
    a.b[1] = 0;
  }
  return a;
}

bool same_checksum(unsigned a, unsigned b) { return a == b || ((a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)); }

}  // namespace

TEST_CASE("rewrite: random packets still verify and round-trip", "[packet][rewrite]") {
  std::mt19937 rng(20240601);
  for (int iter = 0; iter < 2000; ++iter) {
    bool is_v6 = iter % 2 == 1;
    bool tcp = iter % 4 < 2;
    auto src = random_addr(rng, is_v6), dst = random_addr(rng, is_v6);
    auto sport = static_cast<std::uint16_t>(rng()), dport = static_cast<std::uint16_t>(rng());
    bytes payload(rng() % 64);
    for (auto& b : payload) {
      b = static_cast<std::byte>(rng());
    }
    auto l4 = tcp ? tcp_segment(src, dst, sport, dport, rng(), rng(), rng() & 0x3f, payload, 4 * (rng() % 3))
                  : udp_datagram(src, dst, sport, dport, payload);
    auto p = is_v6 ? ipv6(src, dst, tcp ? 6 : 17, l4, rng() % 2 ? std::vector<std::pair<unsigned, std::size_t>>{{0, 8}}
                                                                 : std::vector<std::pair<unsigned, std::size_t>>{})
                   : ipv4(src, dst, tcp ? 6 : 17, l4, 4 * (rng() % 2));
    auto original = p;
    auto info = parse_ok(p);
    REQUIRE(l4_checksum_ok(p, info));

    auto nsrc = rng() % 5 == 0 ? src : random_addr(rng, is_v6);
    auto ndst = rng() % 5 == 0 ? dst : random_addr(rng, is_v6);
    auto nsport = rng() % 5 == 0 ? sport : static_cast<std::uint16_t>(rng());
    auto ndport = static_cast<std::uint16_t>(rng());
    REQUIRE(rewrite(p, info, nsrc, nsport, ndst, ndport));
    CHECK(info.src == nsrc);
    CHECK(info.dst == ndst);
    CHECK(info.sport == nsport);
    CHECK(info.dport == ndport);
    auto again = parse_ok(p);
    CHECK(again.src == nsrc);
    CHECK(again.dst == ndst);
    CHECK(again.sport == nsport);
    CHECK(again.dport == ndport);
    CHECK(again.payload_length == payload.size());
    CHECK(l4_checksum_ok(p, again));
    if (!is_v6) {
      CHECK(ipv4_header_ok(p));
    }
    if (!tcp) {
      CHECK(u16(p, info.l4_offset + 6) != 0);
    }

    // Back again: the original bytes, up to +0/-0 in the checksum fields.
    REQUIRE(rewrite(p, info, src, sport, dst, dport));
    std::size_t l4sum = info.l4_offset + (tcp ? 16 : 6);
    CHECK(same_checksum(u16(p, l4sum), u16(original, l4sum)));
    set16(p, l4sum, u16(original, l4sum));
    if (!is_v6) {
      CHECK(same_checksum(u16(p, 10), u16(original, 10)));
      set16(p, 10, u16(original, 10));
    }
    CHECK(p == original);
  }
}

TEST_CASE("rewrite: UDP checksum zero", "[packet][rewrite]") {
  SECTION("UDP/IPv4 without a checksum stays without") {
    auto p = ipv4(app4, dest4, ipproto::udp, udp_datagram(app4, dest4, 1, 2, hex("0102"), false));
    auto i = parse_ok(p);
    REQUIRE(rewrite(p, i, v4(198, 18, 0, 7), 3, v4(198, 18, 0, 1), 4));
    CHECK(u16(p, 26) == 0);
    CHECK(ipv4_header_ok(p));
    CHECK(l4_checksum_ok(p, parse_ok(p)));
  }
  SECTION("an adjusted checksum of 0 is sent as 0xffff") {
    for (bool is_v6 : {false, true}) {
      auto src = is_v6 ? app6 : app4, dst = is_v6 ? dest6 : dest4;
      auto nsrc = is_v6 ? v6("fd6e:6c00::9") : v4(198, 18, 0, 9), ndst = is_v6 ? v6("fd6e:6c00::1") : v4(198, 18, 0, 1);
      // Choose the payload so that the rewritten datagram's checksum is exactly zero.
      auto target = udp_datagram(nsrc, ndst, 4000, 8000, hex("0000"), false);
      bytes all = pseudo(nsrc, ndst, 17, target.size());
      append(all, target);
      // The sum of the rest is ~ref, so a payload word of ref makes the whole sum 0xffff (-0).
      bytes payload(2);
      set16(payload, 0, ref_checksum(all));
      auto l4 = udp_datagram(src, dst, 1111, 2222, payload);
      auto p = is_v6 ? ipv6(src, dst, 17, l4) : ipv4(src, dst, 17, l4);
      auto i = parse_ok(p);
      REQUIRE(rewrite(p, i, nsrc, 4000, ndst, 8000));
      INFO("v6 " << is_v6);
      CHECK(u16(p, i.l4_offset + 6) == 0xffff);
      CHECK(l4_checksum_ok(p, parse_ok(p)));
    }
  }
}

TEST_CASE("rewrite: refuses what it cannot rewrite", "[packet][rewrite]") {
  auto icmp = ipv4(app4, dest4, ipproto::icmp, hex("0800 f7fc 0001 0002"));
  auto i = parse_ok(icmp);
  auto before = icmp;
  CHECK_FALSE(rewrite(icmp, i, app4, 1, dest4, 2));
  CHECK(icmp == before);

  auto t = ipv4(app4, dest4, ipproto::tcp, tcp_segment(app4, dest4, 1, 2, 3, 4, tcpflag::ack, {}));
  auto ti = parse_ok(t);
  before = t;
  CHECK_FALSE(rewrite(t, ti, app6, 1, dest4, 2));
  CHECK_FALSE(rewrite(t, ti, app4, 1, dest6, 2));
  CHECK(t == before);
  CHECK(ti.src == app4);
  // An info that does not fit the buffer.
  auto lying = ti;
  lying.l4_offset = t.size() - 10;
  CHECK_FALSE(rewrite(t, lying, app4, 1, dest4, 2));
  CHECK(t == before);
}

TEST_CASE("build_tcp_rst", "[packet][build]") {
  struct row {
    const char* what;
    unsigned flags;
    std::size_t payload;
    std::uint32_t want_seq, want_ack;
    unsigned want_flags;
  };
  // The incoming segment has seq 1000, ack 5000.
  std::vector<row> rows = {
      {"SYN", tcpflag::syn, 0, 0, 1001, tcpflag::rst | tcpflag::ack},
      {"SYN with data", tcpflag::syn, 10, 0, 1011, tcpflag::rst | tcpflag::ack},
      {"bare segment with data", 0, 7, 0, 1007, tcpflag::rst | tcpflag::ack},
      {"FIN without ACK", tcpflag::fin, 3, 0, 1004, tcpflag::rst | tcpflag::ack},
      {"ACK", tcpflag::ack, 0, 5000, 0, tcpflag::rst},
      {"data with ACK", tcpflag::ack | tcpflag::psh, 100, 5000, 0, tcpflag::rst},
      {"SYN-ACK", tcpflag::syn | tcpflag::ack, 0, 5000, 0, tcpflag::rst},
  };
  for (bool is_v6 : {false, true}) {
    auto src = is_v6 ? app6 : app4, dst = is_v6 ? dest6 : dest4;
    for (const auto& r : rows) {
      INFO(r.what << (is_v6 ? " v6" : " v4"));
      auto seg = tcp_segment(src, dst, 40000, 80, 1000, 5000, r.flags, bytes(r.payload, std::byte{'x'}));
      auto in = is_v6 ? ipv6(src, dst, 6, seg) : ipv4(src, dst, 6, seg);
      auto to = parse_ok(in);
      bytes out(100);
      auto n = build_tcp_rst(to, out);
      REQUIRE(n == (is_v6 ? 60u : 40u));
      out.resize(n);
      auto rst = parse_ok(out);
      CHECK(rst.version == (is_v6 ? 6 : 4));
      CHECK(rst.src == dst);
      CHECK(rst.dst == src);
      CHECK(rst.sport == 80);
      CHECK(rst.dport == 40000);
      CHECK(rst.seq == r.want_seq);
      CHECK(rst.ack == r.want_ack);
      CHECK(rst.tcp_flags == r.want_flags);
      CHECK(rst.payload_length == 0);
      CHECK(u8(out, is_v6 ? 7 : 8) == 64);
      CHECK(l4_checksum_ok(out, rst));
      CHECK(ref_l4_checksum(dst, src, 6, bytes(out.begin() + static_cast<std::ptrdiff_t>(rst.l4_offset), out.end())) == 0);
      if (!is_v6) {
        CHECK(ipv4_header_ok(out));
      }
      // Too small a buffer.
      bytes small(n - 1);
      CHECK(build_tcp_rst(to, small) == 0);
    }
  }
  // Never a RST for a RST, nor for something that is not TCP.
  auto rst_in = parse_ok(ipv4(app4, dest4, 6, tcp_segment(app4, dest4, 1, 2, 3, 4, tcpflag::rst, {})));
  bytes out(100);
  CHECK(build_tcp_rst(rst_in, out) == 0);
  auto udp = parse_ok(ipv4(app4, dest4, 17, udp_datagram(app4, dest4, 1, 2, {})));
  CHECK(build_tcp_rst(udp, out) == 0);
  // Sequence arithmetic wraps.
  auto wrap = parse_ok(ipv4(app4, dest4, 6, tcp_segment(app4, dest4, 1, 2, 0xffffffff, 0, tcpflag::syn, {})));
  REQUIRE(build_tcp_rst(wrap, out) == 40);
  CHECK(u32(out, 28) == 0);
}

TEST_CASE("build_udp", "[packet][build]") {
  for (bool is_v6 : {false, true}) {
    auto src = is_v6 ? dest6 : dest4, dst = is_v6 ? app6 : app4;
    for (std::size_t len : {0u, 1u, 2u, 57u, 512u}) {
      INFO("len " << len << (is_v6 ? " v6" : " v4"));
      bytes payload(len);
      for (std::size_t k = 0; k < len; ++k) {
        payload[k] = static_cast<std::byte>(k * 7);
      }
      bytes out(1500);
      auto n = build_udp(src, 53, dst, 40000, payload, out);
      std::size_t ip = is_v6 ? 40 : 20;
      REQUIRE(n == ip + 8 + len);
      out.resize(n);
      auto i = parse_ok(out);
      CHECK(i.proto == ipproto::udp);
      CHECK(i.src == src);
      CHECK(i.dst == dst);
      CHECK(i.sport == 53);
      CHECK(i.dport == 40000);
      CHECK(i.payload_length == len);
      CHECK(std::equal(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(i.payload_offset)));
      CHECK(u16(out, ip + 6) != 0);
      CHECK(l4_checksum_ok(out, i));
      CHECK(ref_l4_checksum(src, dst, 17, bytes(out.begin() + static_cast<std::ptrdiff_t>(ip), out.end())) == 0);
      if (!is_v6) {
        CHECK(ipv4_header_ok(out));
        CHECK(u16(out, 6) == 0x4000);  // DF, not a fragment
      }
      bytes small(n - 1);
      CHECK(build_udp(src, 53, dst, 40000, payload, small) == 0);
    }
  }
  bytes out(100);
  CHECK(build_udp(app4, 1, dest6, 2, {}, out) == 0);
  // The largest datagrams each family can carry.
  bytes big(65535 - 28);
  bytes huge(70000);
  CHECK(build_udp(app4, 1, dest4, 2, big, huge) == 65535);
  CHECK(parse_ok(bytes(huge.begin(), huge.begin() + 65535)).payload_length == big.size());
  big.push_back(std::byte{0});
  CHECK(build_udp(app4, 1, dest4, 2, big, huge) == 0);
  bytes big6(65535 - 8);
  CHECK(build_udp(app6, 1, dest6, 2, big6, huge) == 65535 + 40);
  big6.push_back(std::byte{0});
  CHECK(build_udp(app6, 1, dest6, 2, big6, huge) == 0);
}

TEST_CASE("build_icmp_unreachable", "[packet][build]") {
  struct row {
    bool is_v6;
    std::size_t payload;
    std::size_t want_quote;
  };
  std::vector<row> rows = {
      {false, 0, 28},  {false, 10, 38},     {false, 520, 548},  {false, 1400, 548},
      {true, 0, 48},   {true, 100, 148},    {true, 1184, 1232}, {true, 1400, 1232},
  };
  for (const auto& r : rows) {
    INFO("payload " << r.payload << (r.is_v6 ? " v6" : " v4"));
    auto src = r.is_v6 ? app6 : app4, dst = r.is_v6 ? dest6 : dest4;
    auto l4 = udp_datagram(src, dst, 40000, 443, bytes(r.payload, std::byte{0x5a}));
    auto original = r.is_v6 ? ipv6(src, dst, 17, l4) : ipv4(src, dst, 17, l4);
    auto info = parse_ok(original);
    std::uint8_t code = r.is_v6 ? 4 : 3;
    bytes out(2000);
    auto n = build_icmp_unreachable(info, original, code, out);
    std::size_t ip = r.is_v6 ? 40 : 20;
    REQUIRE(n == ip + 8 + r.want_quote);
    out.resize(n);
    if (r.is_v6) {
      CHECK(n <= 1280);
    }
    auto i = parse_ok(out);
    CHECK(i.proto == (r.is_v6 ? ipproto::icmpv6 : ipproto::icmp));
    CHECK(i.src == dst);
    CHECK(i.dst == src);
    CHECK(i.l4_length == 8 + r.want_quote);
    CHECK(u8(out, ip) == (r.is_v6 ? 1u : 3u));
    CHECK(u8(out, ip + 1) == code);
    CHECK(u32(out, ip + 4) == 0);
    CHECK(std::equal(out.begin() + static_cast<std::ptrdiff_t>(ip + 8), out.end(), original.begin()));
    bytes icmp(out.begin() + static_cast<std::ptrdiff_t>(ip), out.end());
    if (r.is_v6) {
      CHECK(ref_l4_checksum(dst, src, 58, icmp) == 0);
    } else {
      CHECK(ref_checksum(icmp) == 0);
      CHECK(ipv4_header_ok(out));
    }
    bytes small(n - 1);
    CHECK(build_icmp_unreachable(info, original, code, small) == 0);
  }
  // Trailing bytes after the original's total length are not quoted.
  auto original = ipv4(app4, dest4, 6, tcp_segment(app4, dest4, 1, 2, 3, 0, tcpflag::syn, {}));
  auto info = parse_ok(original);
  original.resize(original.size() + 30);
  bytes out(2000);
  CHECK(build_icmp_unreachable(info, original, 13, out) == 20 + 8 + 40);
  // No error about an ICMP error, but about an echo request.
  auto unreach = ipv4(dest4, app4, ipproto::icmp, hex("0303 0000 0000 0000"));
  CHECK(build_icmp_unreachable(parse_ok(unreach), unreach, 1, out) == 0);
  auto echo = ipv4(app4, dest4, ipproto::icmp, hex("0800 f7fc 0001 0002"));
  CHECK(build_icmp_unreachable(parse_ok(echo), echo, 1, out) == 20 + 8 + 28);
  auto unreach6 = ipv6(dest6, app6, ipproto::icmpv6, hex("0104 0000 0000 0000"));
  CHECK(build_icmp_unreachable(parse_ok(unreach6), unreach6, 1, out) == 0);
  auto echo6 = ipv6(app6, dest6, ipproto::icmpv6, hex("8000 0000 0001 0002"));
  CHECK(build_icmp_unreachable(parse_ok(echo6), echo6, 1, out) == 40 + 8 + 48);
}

// ---- MSS option and the pseudo-header partial sum (TUN segmentation offload) ----

TEST_CASE("set_tcp_mss rewrites the MSS option and keeps the checksum valid", "[packet][mss]") {
  using namespace nl::netstack;
  // SYN with options: MSS 1460, SACK permitted, timestamps, NOP, window scale (40-byte TCP header)
  // and, second case, a NOP first so the MSS value sits at an odd offset.
  for (bool odd : {false, true}) {
    std::vector<std::byte> pkt(20 + 40, std::byte{0});
    auto put = [&](std::size_t i, int v) { pkt[i] = std::byte(static_cast<unsigned char>(v)); };
    put(0, 0x45);
    put(3, 60);
    put(8, 64);
    put(9, 6);
    for (int i = 0; i < 4; ++i) put(12 + i, std::array{10, 0, 0, 1}[i]), put(16 + i, std::array{10, 77, 0, 1}[i]);
    put(20, 0x9c), put(21, 0x40), put(22, 0), put(23, 80);  // ports 40000 -> 80
    put(32, 10 << 4);                                     // data offset 10 words
    put(33, 0x02);                                        // SYN
    std::size_t o = 40;
    if (odd) put(o++, 1);                                 // NOP
    put(o, 2), put(o + 1, 4), put(o + 2, 0x05), put(o + 3, 0xb4);  // MSS 1460
    o += 4;
    put(o, 4), put(o + 1, 2);                             // SACK permitted
    o += 2;
    put(o, 1), put(o + 1, 3), put(o + 2, 3), put(o + 3, 7);  // NOP, window scale 7
    // IPv4 header checksum, then the TCP checksum
    auto ip = checksum_fold(checksum_add(0, std::span<const std::byte>(pkt).first(20)));
    pkt[10] = std::byte(ip >> 8), pkt[11] = std::byte(ip & 0xff);
    auto info = parse(pkt);
    REQUIRE(info);
    auto sum = pseudo_header_partial(*info);
    auto tcp = checksum_fold(checksum_add(sum, std::span<const std::byte>(pkt).subspan(20)));
    pkt[36] = std::byte(tcp >> 8), pkt[37] = std::byte(tcp & 0xff);
    REQUIRE(l4_checksum_ok(pkt, *info));
    REQUIRE(tcp_mss(pkt, *info) == 1460);
    REQUIRE(set_tcp_mss(pkt, *info, 65475));
    CHECK(tcp_mss(pkt, *info) == 65475);
    CHECK(l4_checksum_ok(pkt, *info));
  }
}

TEST_CASE("tcp_mss is absent without the option, and options running past the header stop the walk", "[packet][mss]") {
  using namespace nl::netstack;
  std::vector<std::byte> pkt(20 + 24, std::byte{0});
  pkt[0] = std::byte{0x45};
  pkt[3] = std::byte{44};
  pkt[9] = std::byte{6};
  pkt[32] = std::byte{6 << 4};
  pkt[40] = std::byte{3};  // window scale claiming 9 bytes: runs past the 4 option bytes
  pkt[41] = std::byte{9};
  auto info = parse(pkt);
  REQUIRE(info);
  CHECK_FALSE(tcp_mss(pkt, *info));
  CHECK_FALSE(set_tcp_mss(pkt, *info, 1000));
}
