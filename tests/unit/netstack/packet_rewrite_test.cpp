// Rewriting addresses and ports with incremental checksums, building RST, UDP and ICMP
// packets, and MSS clamping (netstack/packet.cpp), against the byte-by-byte references.
#include "packet_fixture.hpp"

using namespace nl::netstack;
using namespace nl::netstack::test;

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
