#include "netstack/dns.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace nl::netstack;
using namespace nl::netstack::dns;

namespace {

using bytes = std::vector<std::byte>;

bytes bytes_of(std::initializer_list<int> v) {
  bytes out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}

// --- a tiny independent DNS encoder (RFC 1035 wire format) ---

void put8(bytes& out, unsigned v) { out.push_back(static_cast<std::byte>(v & 0xff)); }
void put16(bytes& out, unsigned v) {
  put8(out, v >> 8);
  put8(out, v);
}

// A dotted name as labels; "" is the root, a trailing dot is allowed.
bytes encode_name(std::string_view name) {
  bytes out;
  while (!name.empty()) {
    auto dot = name.find('.');
    auto label = name.substr(0, dot);
    put8(out, static_cast<unsigned>(label.size()));
    for (char c : label) put8(out, static_cast<unsigned char>(c));
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  put8(out, 0);
  return out;
}

struct header_fields {
  unsigned id = 0x1234;
  unsigned flags = 0x0100;  // RD
  unsigned qd = 1, an = 0, ns = 0, ar = 0;
};

bytes encode_header(const header_fields& h) {
  bytes out;
  for (unsigned v : {h.id, h.flags, h.qd, h.an, h.ns, h.ar}) put16(out, v);
  return out;
}

bytes encode_query(std::string_view name, unsigned type, header_fields h = {}, const bytes& tail = {}) {
  auto out = encode_header(h);
  auto n = encode_name(name);
  out.insert(out.end(), n.begin(), n.end());
  put16(out, type);
  put16(out, 1);  // IN
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

// An OPT record: root name, type 41, UDP size, ext-rcode/version/flags 0, options.
bytes encode_opt(unsigned udp_size, const bytes& rdata) {
  bytes out;
  put8(out, 0);
  put16(out, 41);
  put16(out, udp_size);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<unsigned>(rdata.size()));
  out.insert(out.end(), rdata.begin(), rdata.end());
  return out;
}

std::string repeat(char c, std::size_t n) { return std::string(n, c); }

// `dig example.com A` (BIND 9.18): RD and AD set, EDNS0 OPT with UDP size 1232 and an
// 8-byte client COOKIE option.
const bytes dig_a = bytes_of({
    0xab, 0xcd, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // header
    0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm', 0x00,        // example.com
    0x00, 0x01, 0x00, 0x01,                                                    // A IN
    0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c,          // OPT, 1232
    0x00, 0x0a, 0x00, 0x08, 0x5c, 0x2e, 0x91, 0x07, 0xd3, 0x4a, 0x1f, 0xe8,    // COOKIE
});

// --- a tiny independent decoder for responses ---

struct rr {
  unsigned name = 0, type = 0, cls = 0;
  std::uint32_t ttl = 0;
  bytes rdata;
};

struct response {
  unsigned id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  bytes question;
  std::vector<rr> answers;
  bool ok = false;
};

unsigned get8(const bytes& m, std::size_t i) { return std::to_integer<unsigned>(m.at(i)); }
unsigned get16(const bytes& m, std::size_t i) { return (get8(m, i) << 8) | get8(m, i + 1); }

response decode_response(const bytes& m, std::size_t question_len) {
  response r;
  if (m.size() < 12) return r;
  r.id = get16(m, 0);
  r.flags = get16(m, 2);
  r.qd = get16(m, 4);
  r.an = get16(m, 6);
  r.ns = get16(m, 8);
  r.ar = get16(m, 10);
  std::size_t pos = 12;
  if (r.qd) {
    if (m.size() < pos + question_len) return r;
    r.question.assign(m.begin() + 12, m.begin() + static_cast<std::ptrdiff_t>(12 + question_len));
    pos += question_len;
  }
  for (unsigned i = 0; i < r.an; ++i) {
    if (m.size() < pos + 12) return r;
    rr a;
    a.name = get16(m, pos);
    a.type = get16(m, pos + 2);
    a.cls = get16(m, pos + 4);
    a.ttl = (std::uint32_t{get16(m, pos + 6)} << 16) | get16(m, pos + 8);
    auto len = get16(m, pos + 10);
    pos += 12;
    if (m.size() < pos + len) return r;
    a.rdata.assign(m.begin() + static_cast<std::ptrdiff_t>(pos), m.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    r.answers.push_back(std::move(a));
  }
  r.ok = pos == m.size();
  return r;
}

ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return ip_address::from_v4((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d);
}

ip_address v6(std::initializer_list<int> tail, std::initializer_list<int> head = {0xfd, 0x6e, 0x6c, 0x01}) {
  ip_address a;
  a.v6 = true;
  std::size_t i = 0;
  for (int x : head) a.b[i++] = static_cast<std::uint8_t>(x);
  i = 16 - tail.size();
  for (int x : tail) a.b[i++] = static_cast<std::uint8_t>(x);
  return a;
}

bytes bytes_of_addr(const ip_address& a) {
  bytes out;
  for (auto x : a.bytes()) out.push_back(static_cast<std::byte>(x));
  return out;
}

void check_rejected(const bytes& m) {
  auto r = parse_query(m);
  CHECK_FALSE(r.has_value());
  if (!r) CHECK_FALSE(r.error().empty());
}

}  // namespace

TEST_CASE("parse_query: dig-style A query with EDNS0 OPT and COOKIE", "[dns]") {
  auto r = parse_query(dig_a);
  REQUIRE(r);
  CHECK(r->id == 0xabcd);
  CHECK(r->flags == 0x0120);
  CHECK(r->name == "example.com");
  CHECK(r->qtype == qtype::a);
  CHECK(r->qclass == 1);
  CHECK(r->question_end == 29);

  SECTION("every truncation is rejected") {
    for (std::size_t n = 0; n < dig_a.size(); ++n) {
      CAPTURE(n);
      check_rejected(bytes(dig_a.begin(), dig_a.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
  SECTION("trailing bytes are rejected") {
    auto m = dig_a;
    m.push_back(std::byte{0});
    check_rejected(m);
  }
  SECTION("ARCOUNT 1 without the record is rejected") {
    check_rejected(bytes(dig_a.begin(), dig_a.begin() + 29));
  }
}

TEST_CASE("parse_query: AAAA, case, root and the name length limits", "[dns]") {
  SECTION("AAAA without EDNS") {
    auto m = encode_query("www.example.org", qtype::aaaa);
    auto r = parse_query(m);
    REQUIRE(r);
    CHECK(r->name == "www.example.org");
    CHECK(r->qtype == qtype::aaaa);
    CHECK(r->flags == 0x0100);
    CHECK(r->question_end == m.size());
    for (std::size_t n = 0; n < m.size(); ++n) {
      CAPTURE(n);
      check_rejected(bytes(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
  SECTION("upper case is lower-cased, other printable bytes kept") {
    auto r = parse_query(encode_query("WwW.ExAmPlE.COM", qtype::a));
    REQUIRE(r);
    CHECK(r->name == "www.example.com");
    auto s = parse_query(encode_query("_SRV-x~z.A_b", 33));
    REQUIRE(s);
    CHECK(s->name == "_srv-x~z.a_b");
    CHECK(s->qtype == 33);
  }
  SECTION("the trailing root label gives no trailing dot; the root itself is empty") {
    auto r = parse_query(encode_query("example.com.", qtype::a));
    REQUIRE(r);
    CHECK(r->name == "example.com");
    auto root = parse_query(encode_query("", 2));
    REQUIRE(root);
    CHECK(root->name.empty());
    CHECK(root->question_end == 12 + 1 + 4);
  }
  SECTION("labels up to 63 bytes, names up to 253 characters") {
    auto l63 = repeat('a', 63);
    auto r = parse_query(encode_query(l63 + ".com", qtype::a));
    REQUIRE(r);
    CHECK(r->name == l63 + ".com");
    auto n253 = l63 + "." + l63 + "." + l63 + "." + repeat('b', 61);
    REQUIRE(n253.size() == 253);
    auto s = parse_query(encode_query(n253, qtype::a));
    REQUIRE(s);
    CHECK(s->name == n253);

    check_rejected(encode_query(repeat('a', 64) + ".com", qtype::a));
    auto n254 = l63 + "." + l63 + "." + l63 + "." + repeat('b', 62);
    REQUIRE(n254.size() == 254);
    check_rejected(encode_query(n254, qtype::a));
    check_rejected(encode_query(n254 + ".", qtype::a));
  }
}

TEST_CASE("parse_query: rejects", "[dns]") {
  auto with = [](header_fields h) { return encode_query("example.com", qtype::a, h); };
  REQUIRE(parse_query(with({})));

  SECTION("header") {
    check_rejected(with({.flags = 0x8100}));            // QR=1
    check_rejected(with({.flags = 0x1000}));            // opcode 2 (STATUS)
    check_rejected(with({.flags = 0x2100}));            // opcode 4 (NOTIFY)
    check_rejected(with({.qd = 0}));                    // no question
    check_rejected(with({.qd = 2}));                    // two questions declared
    check_rejected(with({.an = 1}));                    // answers in a query
    check_rejected(with({.ns = 1}));                    // authority records
    check_rejected(with({.ar = 2}));                    // two additional records
    check_rejected(bytes_of({0x12, 0x34, 0x01, 0x00}));  // short header
  }
  SECTION("two questions present") {
    auto m = encode_query("a.b", qtype::a, {.qd = 2});
    auto second = encode_query("c.d", qtype::a);
    m.insert(m.end(), second.begin() + 12, second.end());
    check_rejected(m);
  }
  SECTION("compression pointer or reserved label types in the question") {
    auto m = encode_header({});
    auto n = bytes_of({0x03, 'w', 'w', 'w', 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01});
    m.insert(m.end(), n.begin(), n.end());
    check_rejected(m);
    m = encode_header({});
    n = bytes_of({0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01});
    m.insert(m.end(), n.begin(), n.end());
    check_rejected(m);
    for (int t : {0x40, 0x80}) {
      m = encode_header({});
      n = bytes_of({t | 1, 'a', 0x00, 0x00, 0x01, 0x00, 0x01});
      m.insert(m.end(), n.begin(), n.end());
      check_rejected(m);
    }
  }
  SECTION("bad bytes in labels") {
    auto label = [](std::initializer_list<int> l) {
      auto m = encode_header({});
      put8(m, static_cast<unsigned>(l.size()));
      for (int c : l) put8(m, static_cast<unsigned>(c));
      for (int c : std::initializer_list<int>{3, 'c', 'o', 'm', 0, 0, 1, 0, 1}) put8(m, static_cast<unsigned>(c));
      return m;
    };
    REQUIRE(parse_query(label({'a', 'b'})));
    check_rejected(label({'a', '.', 'b'}));  // a dot inside a label
    check_rejected(label({'a', 0, 'b'}));    // NUL
    check_rejected(label({'a', '\n'}));      // control character
    check_rejected(label({'a', 0x7f}));      // DEL
    check_rejected(label({'a', 0x80}));      // non-ASCII
    check_rejected(label({0xff}));
  }
  SECTION("bad OPT records") {
    auto q = [](const bytes& tail, unsigned ar = 1) { return encode_query("example.com", qtype::a, {.ar = ar}, tail); };
    auto cookie = bytes_of({0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8});
    REQUIRE(parse_query(q(encode_opt(1232, cookie))));
    REQUIRE(parse_query(q(encode_opt(4096, {}))));

    auto wrong_type = encode_opt(1232, {});
    wrong_type[2] = std::byte{1};  // type 1 instead of 41
    check_rejected(q(wrong_type));

    bytes named;  // OPT owned by "a" instead of the root
    put8(named, 1);
    put8(named, 'a');
    auto rest = encode_opt(1232, {});
    named.insert(named.end(), rest.begin(), rest.end());
    check_rejected(q(named));

    auto long_rdlen = encode_opt(1232, cookie);
    long_rdlen[10] = std::byte{13};  // RDLENGTH one past the end
    check_rejected(q(long_rdlen));

    auto short_rdlen = encode_opt(1232, cookie);
    short_rdlen[10] = std::byte{11};  // RDLENGTH one short: trailing byte after it
    check_rejected(q(short_rdlen));

    check_rejected(q(encode_opt(1232, bytes_of({0x00, 0x0a, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8}))));  // option overruns
    check_rejected(q(encode_opt(1232, bytes_of({0x00, 0x0a, 0x00}))));  // partial option header
    check_rejected(q(encode_opt(1232, {}), 0));                           // OPT not declared: trailing bytes
  }
  SECTION("trailing bytes") {
    auto m = encode_query("example.com", qtype::a);
    m.push_back(std::byte{0});
    check_rejected(m);
  }
}

TEST_CASE("build_answer", "[dns]") {
  const std::vector<ip_address> addrs = {v4(198, 18, 128, 1), v6({0, 1}), v4(198, 18, 128, 2)};

  SECTION("A answers for the dig query, parsed back") {
    auto q = parse_query(dig_a);
    REQUIRE(q);
    auto out = build_answer(dig_a, *q, addrs, 60);
    auto r = decode_response(out, q->question_end - 12);
    REQUIRE(r.ok);
    CHECK(r.id == 0xabcd);
    CHECK(r.flags == 0x8180);  // QR, opcode 0, AA 0, RD echoed, RA, rcode 0 (AD not echoed)
    CHECK(r.qd == 1);
    CHECK(r.an == 2);
    CHECK(r.ns == 0);
    CHECK(r.ar == 0);
    CHECK(r.question == bytes(dig_a.begin() + 12, dig_a.begin() + 29));
    REQUIRE(r.answers.size() == 2);
    CHECK(r.answers[0].name == 0xc00c);
    CHECK(r.answers[0].type == 1);
    CHECK(r.answers[0].cls == 1);
    CHECK(r.answers[0].ttl == 60);
    CHECK(r.answers[0].rdata == bytes_of({198, 18, 128, 1}));
    CHECK(r.answers[1].rdata == bytes_of({198, 18, 128, 2}));
    CHECK_FALSE(parse_query(out));  // a response is not a query
  }
  SECTION("AAAA answers only v6 addresses, RD clear stays clear") {
    auto m = encode_query("v6.example", qtype::aaaa, {.id = 7, .flags = 0});
    auto q = parse_query(m);
    REQUIRE(q);
    auto out = build_answer(m, *q, addrs, 0x01020304);
    auto r = decode_response(out, m.size() - 12);
    REQUIRE(r.ok);
    CHECK(r.id == 7);
    CHECK(r.flags == 0x8080);
    CHECK(r.an == 1);
    REQUIRE(r.answers.size() == 1);
    CHECK(r.answers[0].type == 28);
    CHECK(r.answers[0].ttl == 0x01020304);
    CHECK(r.answers[0].rdata == bytes_of_addr(addrs[1]));
    CHECK(r.question == bytes(m.begin() + 12, m.end()));
  }
  SECTION("no address of the family, no addresses, or another type: NODATA") {
    auto m = encode_query("only4.example", qtype::aaaa);
    auto q = parse_query(m);
    REQUIRE(q);
    std::vector<ip_address> only4 = {v4(10, 0, 0, 1)};
    for (auto out : {build_answer(m, *q, only4, 60), build_answer(m, *q, {}, 60)}) {
      auto r = decode_response(out, m.size() - 12);
      REQUIRE(r.ok);
      CHECK(r.flags == 0x8180);
      CHECK(r.qd == 1);
      CHECK(r.an == 0);
    }
    auto mx = encode_query("example.com", 15);
    auto qmx = parse_query(mx);
    REQUIRE(qmx);
    auto r = decode_response(build_answer(mx, *qmx, addrs, 60), mx.size() - 12);
    REQUIRE(r.ok);
    CHECK(r.an == 0);
    CHECK((r.flags & 0xf) == 0);
  }
}

TEST_CASE("build_error", "[dns]") {
  SECTION("short or garbage inputs: header only, id copied when present") {
    for (std::size_t n : {0u, 1u, 2u, 11u}) {
      CAPTURE(n);
      bytes m(n, std::byte{0xa5});
      auto out = build_error(m, nullptr, rcode::formerr);
      auto r = decode_response(out, 0);
      REQUIRE(r.ok);
      CHECK(out.size() == 12);
      CHECK(r.id == (n >= 2 ? 0xa5a5u : 0u));
      CHECK((r.flags & 0x8000) != 0);
      CHECK((r.flags & 0x7800) == 0);
      CHECK((r.flags & 0xf) == rcode::formerr);
      CHECK(r.qd == 0);
      CHECK(r.an == 0);
      CHECK(r.ns == 0);
      CHECK(r.ar == 0);
    }
  }
  SECTION("with a query: the question copied") {
    auto q = parse_query(dig_a);
    REQUIRE(q);
    auto out = build_error(dig_a, &*q, rcode::refused);
    auto r = decode_response(out, 17);
    REQUIRE(r.ok);
    CHECK(r.id == 0xabcd);
    CHECK((r.flags & 0x8000) != 0);
    CHECK((r.flags & 0x0100) != 0);  // RD echoed
    CHECK((r.flags & 0xf) == rcode::refused);
    CHECK(r.qd == 1);
    CHECK(r.an == 0);
    CHECK(r.question == bytes(dig_a.begin() + 12, dig_a.begin() + 29));
  }
  SECTION("a query whose question does not fit msg is not copied") {
    auto q = parse_query(dig_a);
    REQUIRE(q);
    bytes shorter(dig_a.begin(), dig_a.begin() + 20);
    auto r = decode_response(build_error(shorter, &*q, rcode::servfail), 0);
    REQUIRE(r.ok);
    CHECK(r.qd == 0);
    CHECK(r.id == 0xabcd);
    CHECK((r.flags & 0xf) == rcode::servfail);
  }
}

TEST_CASE("fake_ip_pool: stable mappings, families kept apart", "[dns]") {
  fake_ip_pool pool(v4(198, 18, 128, 0), 17, v6({}, {0xfd, 0x6e, 0x6c, 0x01}), 96, 1000);
  auto a = pool.assign("example.com", false);
  auto b = pool.assign("example.org", false);
  CHECK_FALSE(a.v6);
  CHECK(a != b);
  CHECK(pool.assign("example.com", false) == a);
  CHECK(pool.size(false) == 2);
  CHECK(pool.size(true) == 0);
  CHECK(a == v4(198, 18, 128, 1));  // the network address is skipped
  CHECK(b == v4(198, 18, 128, 2));

  auto a6 = pool.assign("example.com", true);
  CHECK(a6.v6);
  CHECK(a6 == v6({0, 0, 0, 1}));
  CHECK(pool.assign("example.com", true) == a6);
  CHECK(pool.size(true) == 1);

  CHECK(pool.name_of(a) == "example.com");
  CHECK(pool.name_of(b) == "example.org");
  CHECK(pool.name_of(a6) == "example.com");
  CHECK_FALSE(pool.name_of(v4(198, 18, 128, 3)));     // in the pool, never handed out
  CHECK_FALSE(pool.name_of(v4(198, 18, 128, 0)));     // network address
  CHECK_FALSE(pool.name_of(v4(10, 0, 0, 1)));         // outside
  CHECK_FALSE(pool.name_of(v6({0, 0, 0, 2})));        // v6 offset not handed out
  ip_address a_as_v6 = a;                             // same bytes, other family
  a_as_v6.v6 = true;
  CHECK_FALSE(pool.name_of(a_as_v6));
}

TEST_CASE("fake_ip_pool: tiny v4 pool recycles least recently used, never network/broadcast", "[dns]") {
  // 10.9.8.0/29: 10.9.8.1 .. 10.9.8.6 usable.
  fake_ip_pool pool(v4(10, 9, 8, 0), 29, v6({}, {0xfd, 0}), 126, 100);
  std::set<ip_address> seen;
  for (int i = 0; i < 6; ++i) {
    auto a = pool.assign("n" + std::to_string(i), false);
    CHECK(a == v4(10, 9, 8, static_cast<std::uint8_t>(i + 1)));
    seen.insert(a);
  }
  CHECK(seen.size() == 6);
  CHECK(pool.size(false) == 6);

  // Refresh n0 (assign) and n1 (name_of): n2 is now the least recently used.
  CHECK(pool.assign("n0", false) == v4(10, 9, 8, 1));
  CHECK(pool.name_of(v4(10, 9, 8, 2)) == "n1");
  auto x = pool.assign("x", false);
  CHECK(x == v4(10, 9, 8, 3));  // n2's address
  CHECK(pool.size(false) == 6);
  CHECK(pool.name_of(x) == "x");
  auto y = pool.assign("y", false);
  CHECK(y == v4(10, 9, 8, 4));  // then n3's
  // n2 lost its mapping: asking again gives it the next least recently used address (n4's).
  CHECK(pool.assign("n2", false) == v4(10, 9, 8, 5));
  CHECK_FALSE(pool.name_of(v4(10, 9, 8, 0)));
  CHECK_FALSE(pool.name_of(v4(10, 9, 8, 7)));

  for (int i = 0; i < 50; ++i) {
    auto a = pool.assign("z" + std::to_string(i), false);
    CHECK(a != v4(10, 9, 8, 0));
    CHECK(a != v4(10, 9, 8, 7));
    CHECK(pool.contains(a));
    CHECK(pool.name_of(a) == "z" + std::to_string(i));
  }
  CHECK(pool.size(false) == 6);

  // v6 /126: offsets 1..3 (no broadcast in IPv6).
  auto p1 = pool.assign("a", true);
  auto p2 = pool.assign("b", true);
  auto p3 = pool.assign("c", true);
  CHECK(p1 == v6({1}, {0xfd, 0}));
  CHECK(p3 == v6({3}, {0xfd, 0}));
  CHECK(pool.assign("d", true) == p1);
  CHECK(pool.name_of(p2) == "b");
  CHECK(pool.assign("e", true) == p3);
  CHECK(pool.size(true) == 3);
}

TEST_CASE("fake_ip_pool: name_of after recycling", "[dns]") {
  fake_ip_pool pool(v4(192, 168, 77, 0), 30, v6({}), 96, 100);  // /30: .1 and .2
  auto a = pool.assign("a.example", false);
  auto b = pool.assign("b.example", false);
  auto c = pool.assign("c.example", false);  // recycles a's address
  CHECK(c == a);
  CHECK(pool.name_of(a) == "c.example");
  CHECK(pool.name_of(b) == "b.example");
  // a.example no longer resolves: no address names it.
  for (auto addr : {v4(192, 168, 77, 1), v4(192, 168, 77, 2)}) CHECK(pool.name_of(addr) != "a.example");
}

TEST_CASE("fake_ip_pool: capacity smaller than the pool", "[dns]") {
  fake_ip_pool pool(v4(100, 64, 0, 0), 24, v6({}), 64, 2);
  auto a = pool.assign("a", false);
  auto b = pool.assign("b", false);
  CHECK(a == v4(100, 64, 0, 1));
  CHECK(b == v4(100, 64, 0, 2));
  auto c = pool.assign("c", false);
  CHECK(c == a);  // capacity reached: recycled rather than a third address
  CHECK(pool.size(false) == 2);
  CHECK_FALSE(pool.name_of(v4(100, 64, 0, 3)));
  CHECK(pool.assign("a", false) == b);  // b was the least recently used
  CHECK(pool.name_of(b) == "a");
}

TEST_CASE("fake_ip_pool: contains() is a range check", "[dns]") {
  // Base given with host bits set: they are ignored.
  fake_ip_pool pool(v4(198, 18, 128, 5), 17, v6({0x12}, {0xfd, 0x6e, 0x6c, 0x01}), 96, 10);
  CHECK(pool.contains(v4(198, 18, 128, 0)));
  CHECK(pool.contains(v4(198, 18, 255, 255)));
  CHECK(pool.contains(v4(198, 18, 200, 7)));
  CHECK_FALSE(pool.contains(v4(198, 18, 127, 255)));
  CHECK_FALSE(pool.contains(v4(198, 19, 0, 0)));
  CHECK_FALSE(pool.contains(v4(0, 0, 0, 0)));
  CHECK(pool.contains(v6({})));
  CHECK(pool.contains(v6({0xff, 0xff, 0xff, 0xff})));
  CHECK_FALSE(pool.contains(v6({0x01, 0, 0, 0, 0}, {0xfd, 0x6e, 0x6c, 0x01})));
  CHECK_FALSE(pool.contains(v6({1}, {0xfd, 0x6e, 0x6c, 0x02})));
  ip_address v4_as_v6 = v4(198, 18, 128, 1);
  v4_as_v6.v6 = true;
  CHECK_FALSE(pool.contains(v4_as_v6));
  // contains() does not depend on mappings.
  CHECK(pool.size(false) == 0);
  CHECK(pool.assign("a", false) == v4(198, 18, 128, 1));
  CHECK(pool.assign("a", true) == v6({1}));
  // The last v6 offset inside a /96 is 2^32-2: ::ffff:ffff is never handed out.
  CHECK_FALSE(pool.name_of(v6({0xff, 0xff, 0xff, 0xff})));
}

TEST_CASE("fake_ip_pool: a wide v6 prefix uses at most 2^32-2 offsets", "[dns]") {
  fake_ip_pool pool(v4(10, 0, 0, 0), 8, v6({}, {0xfd, 0x01}), 64, 4);
  auto a = pool.assign("x", true);
  CHECK(a == v6({0, 0, 0, 1}, {0xfd, 0x01}));
  // In the /64 but beyond the offsets the pool uses: contained, never mapped.
  auto beyond = v6({1, 0, 0, 0, 1}, {0xfd, 0x01});
  CHECK(pool.contains(beyond));
  CHECK_FALSE(pool.name_of(beyond));
  CHECK(pool.name_of(a) == "x");
}

TEST_CASE("fake_ip_pool: an empty pool refuses to assign", "[dns]") {
  fake_ip_pool pool(v4(10, 0, 0, 1), 32, v6({}), 128, 10);
  CHECK_THROWS(pool.assign("a", false));
  CHECK_THROWS(pool.assign("a", true));
  CHECK_FALSE(pool.name_of(v4(10, 0, 0, 1)));
  CHECK(pool.contains(v4(10, 0, 0, 1)));
  fake_ip_pool zero(v4(10, 0, 0, 0), 24, v6({}), 96, 0);
  CHECK_THROWS(zero.assign("a", false));
}
