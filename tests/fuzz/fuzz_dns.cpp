// Feeds arbitrary bytes to the DNS query parser as the TUN capture would (one UDP payload
// to port 53). Whatever parses must meet the parser's promises; the answers built for it
// (A/AAAA, error) are checked by a small decoder here; errors are built for any input.
// The same bytes also drive a tiny fake_ip_pool (assign/name_of stay consistent).
//
// Seeds (tests/fuzz/corpus/fuzz_dns/) were written once with a one-off python3 command,
// not by tests/fuzz/make_corpus.py: a `dig example.com A` query with EDNS0 (UDP 1232 and
// a COOKIE option; RD and AD set), an AAAA query, an MX query and an A query for a
// 253-character name, each a plain RFC 1035 message built with struct.pack.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/dns.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::netstack;
using namespace nl::netstack::dns;

namespace {

unsigned get8(std::span<const std::byte> m, std::size_t i) { return std::to_integer<unsigned>(m[i]); }
unsigned get16(std::span<const std::byte> m, std::size_t i) { return (get8(m, i) << 8) | get8(m, i + 1); }

// The question name as labels, the way parse_query must have read it (lower-cased).
std::vector<std::byte> encode_name(std::string_view name) {
  std::vector<std::byte> out;
  while (!name.empty()) {
    auto dot = name.find('.');
    auto label = name.substr(0, dot);
    out.push_back(static_cast<std::byte>(label.size()));
    for (char c : label) out.push_back(static_cast<std::byte>(c));
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  out.push_back(std::byte{0});
  return out;
}

void check_query(std::span<const std::byte> msg, const query& q) {
  NL_FUZZ_CHECK(q.question_end >= 12 + 5 && q.question_end <= msg.size());
  NL_FUZZ_CHECK(q.id == get16(msg, 0) && q.flags == get16(msg, 2));
  NL_FUZZ_CHECK((q.flags & 0xf800) == 0);
  NL_FUZZ_CHECK(q.name.size() <= 253);
  for (char c : q.name) {
    NL_FUZZ_CHECK(c >= 0x20 && c <= 0x7e && !(c >= 'A' && c <= 'Z'));
  }
  NL_FUZZ_CHECK(q.name.empty() || (q.name.front() != '.' && q.name.back() != '.'));
  NL_FUZZ_CHECK(q.name.find("..") == std::string::npos);
  // The name re-encodes to the question's name bytes, up to case.
  auto enc = encode_name(q.name);
  NL_FUZZ_CHECK(12 + enc.size() + 4 == q.question_end);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    auto c = get8(msg, 12 + i);
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    NL_FUZZ_CHECK(c == std::to_integer<unsigned>(enc[i]));
  }
  NL_FUZZ_CHECK(q.qtype == get16(msg, q.question_end - 4) && q.qclass == get16(msg, q.question_end - 2));
}

// A response built for q: header, the question copied, `an` answers of the expected type.
void check_response(std::span<const std::byte> out, std::span<const std::byte> msg, const query& q,
                    unsigned an, unsigned rc, std::uint32_t ttl) {
  NL_FUZZ_CHECK(out.size() >= q.question_end);
  NL_FUZZ_CHECK(get16(out, 0) == q.id);
  NL_FUZZ_CHECK(get16(out, 2) == (0x8000u | (q.flags & 0x0100u) | 0x0080u | rc));
  NL_FUZZ_CHECK(get16(out, 4) == 1 && get16(out, 6) == an && get16(out, 8) == 0 && get16(out, 10) == 0);
  for (std::size_t i = 12; i < q.question_end; ++i) NL_FUZZ_CHECK(out[i] == msg[i]);
  std::size_t pos = q.question_end;
  unsigned type = q.qtype == qtype::aaaa ? 28 : 1;
  for (unsigned i = 0; i < an; ++i) {
    NL_FUZZ_CHECK(out.size() - pos >= 12);
    NL_FUZZ_CHECK(get16(out, pos) == 0xc00c && get16(out, pos + 2) == type && get16(out, pos + 4) == 1);
    NL_FUZZ_CHECK(((std::uint32_t{get16(out, pos + 6)} << 16) | get16(out, pos + 8)) == ttl);
    NL_FUZZ_CHECK(get16(out, pos + 10) == (type == 28 ? 16u : 4u));
    pos += 12 + get16(out, pos + 10);
  }
  NL_FUZZ_CHECK(pos == out.size());
  NL_FUZZ_CHECK(!parse_query(out));  // QR=1: never taken for a query
}

// Pool operations from the input: each step reads an op byte and a short name.
void drive_pool(std::span<const std::byte> in) {
  if (in.empty()) return;
  std::size_t capacity = get8(in, 0) % 9;  // 0..8: 0 leaves the pools empty
  // v4 10.1.2.0/29 (offsets 1..6), v6 fd00::/125 (offsets 1..7).
  ip_address v6_base;
  v6_base.v6 = true;
  v6_base.b[0] = 0xfd;
  fake_ip_pool pool(ip_address::from_v4(0x0a010200), 29, v6_base, 125, capacity);
  in = in.subspan(1);
  int steps = 0;
  while (in.size() >= 2 && steps++ < 256) {
    unsigned op = get8(in, 0);
    std::size_t len = get8(in, 1) % 4;
    in = in.subspan(2);
    len = std::min(len, in.size());
    std::string name(reinterpret_cast<const char*>(in.data()), len);
    in = in.subspan(len);
    bool v6 = op & 1;
    if (op & 2) {
      // Look up an address in or around the pool (offsets 0..7, 8 is outside a /29).
      ip_address a = v6 ? v6_base : ip_address::from_v4(0x0a010200);
      a.b[v6 ? 15 : 3] = static_cast<std::uint8_t>(a.b[v6 ? 15 : 3] + (op >> 2) % 9);
      auto n = pool.name_of(a);
      auto off = (op >> 2) % 9;
      if (n) {
        NL_FUZZ_CHECK(off >= 1 && off <= (v6 ? 7u : 6u));
        NL_FUZZ_CHECK(pool.contains(a));
        NL_FUZZ_CHECK(pool.assign(*n, v6) == a);  // the mapping is the same both ways
      }
      NL_FUZZ_CHECK(pool.contains(a) == (off < 8));
    } else if (capacity == 0) {
      bool threw = false;
      try {
        (void)pool.assign(name, v6);
      } catch (const std::length_error&) {
        threw = true;
      }
      NL_FUZZ_CHECK(threw);
    } else {
      auto a = pool.assign(name, v6);
      NL_FUZZ_CHECK(a.v6 == v6 && pool.contains(a));
      auto last = a.b[v6 ? 15 : 3] & 7u;
      NL_FUZZ_CHECK(last != 0 && (v6 || last != 7));
      NL_FUZZ_CHECK(pool.name_of(a) == name);
      NL_FUZZ_CHECK(pool.assign(name, v6) == a);
    }
    NL_FUZZ_CHECK(pool.size(false) <= capacity && pool.size(true) <= capacity);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  auto err = build_error(in, nullptr, rcode::formerr);
  NL_FUZZ_CHECK(err.size() == 12);
  NL_FUZZ_CHECK(get16(err, 0) == (size >= 2 ? get16(in, 0) : 0u));
  NL_FUZZ_CHECK(get16(err, 2) == 0x8081u && get16(err, 4) == 0 && get16(err, 6) == 0);

  if (auto q = parse_query(in)) {
    check_query(in, *q);
    const ip_address addrs[] = {ip_address::from_v4(0xc6128001), [] {
                                  ip_address a;
                                  a.v6 = true;
                                  a.b[0] = 0xfd;
                                  a.b[15] = 1;
                                  return a;
                                }()};
    std::uint32_t ttl = size;
    auto ans = build_answer(in, *q, addrs, ttl);
    bool addr_type = q->qtype == qtype::a || q->qtype == qtype::aaaa;
    check_response(ans, in, *q, addr_type ? 1 : 0, 0, ttl);
    check_response(build_answer(in, *q, {}, ttl), in, *q, 0, 0, ttl);
    check_response(build_error(in, &*q, rcode::refused), in, *q, 0, rcode::refused, ttl);
  } else {
    NL_FUZZ_CHECK(!q.error().empty());
  }

  drive_pool(in);
  return 0;
}
