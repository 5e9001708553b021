// IPv4/IPv6 checksums and header parsing (netstack/packet.cpp), against references
// computed byte by byte, including every truncation of valid packets.
#include "packet_fixture.hpp"

using namespace nl::netstack;
using namespace nl::netstack::test;

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
