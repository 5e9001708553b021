#include "netstack/dns.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace nl::netstack::dns {
namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t max_name = 253;      // dotted form, no trailing dot
constexpr std::uint16_t type_opt = 41;
constexpr std::uint16_t class_in = 1;
constexpr std::uint16_t flag_qr = 0x8000;
constexpr std::uint16_t flag_rd = 0x0100;
constexpr std::uint16_t flag_ra = 0x0080;

std::uint8_t u8(std::span<const std::byte> in, std::size_t i) { return std::to_integer<std::uint8_t>(in[i]); }

std::uint16_t u16(std::span<const std::byte> in, std::size_t i) {
  return static_cast<std::uint16_t>((u8(in, i) << 8) | u8(in, i + 1));
}

void put8(std::vector<std::byte>& out, std::uint8_t v) { out.push_back(static_cast<std::byte>(v)); }

void put16(std::vector<std::byte>& out, std::uint16_t v) {
  put8(out, static_cast<std::uint8_t>(v >> 8));
  put8(out, static_cast<std::uint8_t>(v));
}

void put32(std::vector<std::byte>& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v));
}

void put_header(std::vector<std::byte>& out, std::uint16_t id, std::uint16_t flags, std::uint16_t qd,
                std::uint16_t an) {
  put16(out, id);
  put16(out, flags);
  put16(out, qd);
  put16(out, an);
  put16(out, 0);  // NSCOUNT
  put16(out, 0);  // ARCOUNT
}

// True if q's question lies inside msg, so it can be copied: at least a root name and
// QTYPE/QCLASS after the header. (parse_query guarantees this for its own results.)
bool question_fits(std::span<const std::byte> msg, const query& q) {
  return q.question_end >= header_size + 5 && q.question_end <= msg.size();
}

// The additional record of a query: an EDNS0 OPT pseudo-RR (RFC 6891) with the root as
// owner name, whose RDATA is a sequence of {code, length, data} options. Returns the offset
// just past it, or 0 if it is malformed or does not fit.
std::size_t parse_opt(std::span<const std::byte> msg, std::size_t pos) {
  // name(1) type(2) class(2) ttl(4) rdlength(2)
  if (msg.size() - pos < 11 || u8(msg, pos) != 0 || u16(msg, pos + 1) != type_opt) {
    return 0;
  }
  std::size_t rdlen = u16(msg, pos + 9);
  pos += 11;
  if (msg.size() - pos < rdlen) {
    return 0;
  }
  std::size_t end = pos + rdlen;
  while (pos < end) {
    if (end - pos < 4) {
      return 0;
    }
    std::size_t len = u16(msg, pos + 2);
    pos += 4;
    if (end - pos < len) {
      return 0;
    }
    pos += len;
  }
  return end;
}

}  // namespace

std::expected<query, std::string_view> parse_query(std::span<const std::byte> msg) noexcept {
  using std::unexpected;
  if (msg.size() < header_size) {
    return unexpected("short header");
  }
  query q;
  q.id = u16(msg, 0);
  q.flags = u16(msg, 2);
  if (q.flags & flag_qr) {
    return unexpected("not a query");
  }
  if (((q.flags >> 11) & 0xf) != 0) {
    return unexpected("opcode not QUERY");
  }
  if (u16(msg, 4) != 1) {
    return unexpected("QDCOUNT not 1");
  }
  if (u16(msg, 6) != 0 || u16(msg, 8) != 0) {
    return unexpected("answer or authority records in a query");
  }
  auto arcount = u16(msg, 10);
  if (arcount > 1) {
    return unexpected("more than one additional record");
  }

  // The question name: at most 255 wire bytes, so the loop is bounded by max_name.
  char buf[max_name];
  std::size_t n = 0;  // dotted length so far
  std::size_t pos = header_size;
  for (;;) {
    if (pos >= msg.size()) {
      return unexpected("truncated name");
    }
    std::size_t len = u8(msg, pos);
    if ((len & 0xc0) == 0xc0) {
      return unexpected("compression pointer in question");
    }
    if (len & 0xc0) {
      return unexpected("bad label type");
    }
    ++pos;
    if (len == 0) {
      break;
    }
    if (msg.size() - pos < len) {
      return unexpected("truncated name");
    }
    std::size_t need = len + (n ? 1 : 0);
    if (max_name - n < need) {
      return unexpected("name too long");
    }
    if (n) {
      buf[n++] = '.';
    }
    for (std::size_t i = 0; i < len; ++i) {
      auto c = u8(msg, pos + i);
      if (c == '.' || c < 0x20 || c > 0x7e) {
        return unexpected("bad character in label");
      }
      if (c >= 'A' && c <= 'Z') {
        c = static_cast<std::uint8_t>(c - 'A' + 'a');
      }
      buf[n++] = static_cast<char>(c);
    }
    pos += len;
  }
  if (msg.size() - pos < 4) {
    return unexpected("truncated question");
  }
  q.qtype = u16(msg, pos);
  q.qclass = u16(msg, pos + 2);
  pos += 4;
  q.question_end = pos;

  if (arcount == 1) {
    pos = parse_opt(msg, pos);
    if (pos == 0) {
      return unexpected("bad OPT record");
    }
  }
  if (pos != msg.size()) {
    return unexpected("trailing bytes");
  }
  try {
    q.name.assign(buf, n);
  } catch (...) {
    return unexpected("out of memory");
  }
  return q;
}

std::vector<std::byte> build_answer(std::span<const std::byte> msg, const query& q,
                                    std::span<const ip_address> answers, std::uint32_t ttl) {
  if (!question_fits(msg, q)) {
    return build_error(msg, nullptr, rcode::servfail);
  }
  bool want_v6 = q.qtype == qtype::aaaa;
  bool want_any = q.qtype == qtype::a || want_v6;
  std::size_t count = 0;
  if (want_any) {
    count = static_cast<std::size_t>(
        std::count_if(answers.begin(), answers.end(), [&](const ip_address& a) { return a.v6 == want_v6; }));
    count = std::min<std::size_t>(count, std::numeric_limits<std::uint16_t>::max());
  }
  std::size_t qlen = q.question_end - header_size;
  std::vector<std::byte> out;
  out.reserve(header_size + qlen + count * (12 + (want_v6 ? 16 : 4)));
  put_header(out, q.id, static_cast<std::uint16_t>(flag_qr | (q.flags & flag_rd) | flag_ra), 1,
             static_cast<std::uint16_t>(count));
  out.insert(out.end(), msg.begin() + header_size, msg.begin() + static_cast<std::ptrdiff_t>(q.question_end));
  std::size_t written = 0;
  for (const auto& a : answers) {
    if (written == count) {
      break;
    }
    if (a.v6 != want_v6) {
      continue;
    }
    put16(out, 0xc00c);  // owner: the question name at offset 12
    put16(out, want_v6 ? qtype::aaaa : qtype::a);
    put16(out, class_in);
    put32(out, ttl);
    auto raw = a.bytes();
    put16(out, static_cast<std::uint16_t>(raw.size()));
    for (auto b : raw) put8(out, b);
    ++written;
  }
  return out;
}

std::vector<std::byte> build_error(std::span<const std::byte> msg, const query* q, std::uint8_t rc) {
  std::vector<std::byte> out;
  auto flags = static_cast<std::uint16_t>(flag_qr | flag_ra | (rc & 0xf));
  if (q && question_fits(msg, *q)) {
    out.reserve(q->question_end);
    put_header(out, q->id, static_cast<std::uint16_t>(flags | (q->flags & flag_rd)), 1, 0);
    out.insert(out.end(), msg.begin() + header_size, msg.begin() + static_cast<std::ptrdiff_t>(q->question_end));
    return out;
  }
  out.reserve(header_size);
  std::uint16_t id = msg.size() >= 2 ? u16(msg, 0) : 0;
  put_header(out, id, flags, 0, 0);
  return out;
}

// --- fake_ip_pool ---

namespace {

// Keeps the first `prefix` bits of a, zeroes the rest (prefix <= the family's width;
// the unused tail of an IPv4 address is zeroed too).
ip_address masked(ip_address a, unsigned prefix) {
  for (std::size_t i = 0; i < a.b.size(); ++i) {
    auto first = static_cast<unsigned>(i * 8);  // first bit of byte i
    if (first >= prefix) {
      a.b[i] = 0;
    } else if (prefix - first < 8) {
      a.b[i] = static_cast<std::uint8_t>(a.b[i] & (0xff00u >> (prefix - first)));
    }
  }
  return a;
}

ip_address normalized(ip_address a, bool v6) {
  a.v6 = v6;
  if (!v6) {
    std::fill(a.b.begin() + 4, a.b.end(), std::uint8_t{0});
  }
  return a;
}

constexpr std::uint64_t max_v6_span = 0xffffffffull - 1;  // 2^32 - 2

}  // namespace

fake_ip_pool::fake_ip_pool(ip_address v4_base, unsigned v4_prefix, ip_address v6_base, unsigned v6_prefix,
                           std::size_t capacity) {
  v4_.prefix = std::min(v4_prefix, 32u);
  v4_.base = masked(normalized(v4_base, false), v4_.prefix);
  unsigned host4 = 32 - v4_.prefix;
  // Skip the network address and the broadcast address: a /31 or /32 has nothing left.
  v4_.span = host4 >= 2 ? (std::uint64_t{1} << host4) - 2 : 0;

  v6_.prefix = std::min(v6_prefix, 128u);
  v6_.base = masked(normalized(v6_base, true), v6_.prefix);
  unsigned host6 = 128 - v6_.prefix;
  // Skip the network address; offsets stay below 2^32 whatever the prefix.
  v6_.span = host6 >= 32 ? max_v6_span : (std::uint64_t{1} << host6) - 1;

  for (family* f : {&v4_, &v6_}) {
    f->next = 1;
    f->capacity = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, f->span));
  }
}

ip_address fake_ip_pool::at(const family& f, std::uint64_t offset) noexcept {
  ip_address a = f.base;
  // Big-endian add of offset (< 2^32) into the address; the host bits of base are zero and
  // offset <= span < 2^(host bits), so nothing carries into the prefix.
  std::size_t i = a.size();
  std::uint64_t carry = offset;
  while (carry && i > 0) {
    --i;
    carry += a.b[i];
    a.b[i] = static_cast<std::uint8_t>(carry);
    carry >>= 8;
  }
  return a;
}

std::optional<std::uint64_t> fake_ip_pool::offset_of(const family& f, const ip_address& a) noexcept {
  if (a.v6 != f.base.v6 || f.span == 0) {
    return std::nullopt;
  }
  if (masked(a, f.prefix) != f.base) {
    return std::nullopt;
  }
  // a's host part. Usable offsets fit in the last 4 bytes, so any byte before them that
  // differs from base puts a beyond every usable offset; base's host bits are zero, so the
  // difference of the last 4 bytes is the offset.
  std::size_t n = a.size();
  for (std::size_t i = 0; i + 4 < n; ++i) {
    if (a.b[i] != f.base.b[i]) {
      return std::nullopt;
    }
  }
  std::uint64_t off = 0;
  std::uint64_t base_low = 0;
  for (std::size_t i = n - 4; i < n; ++i) {
    off = (off << 8) | a.b[i];
    base_low = (base_low << 8) | f.base.b[i];
  }
  off -= base_low;
  if (off == 0 || off > f.span) {
    return std::nullopt;
  }
  return off;
}

ip_address fake_ip_pool::assign(std::string_view name, bool v6) {
  family& f = v6 ? v6_ : v4_;
  std::string key(name);
  if (auto it = f.by_name.find(key); it != f.by_name.end()) {
    f.lru.splice(f.lru.begin(), f.lru, it->second);
    return at(f, it->second->second);
  }
  if (f.capacity == 0) {
    throw std::length_error("fake_ip_pool: no usable address in the pool");
  }
  if (f.lru.size() < f.capacity && f.next <= f.span) {
    std::uint64_t off = f.next;
    f.lru.emplace_front(key, off);
    try {
      f.by_offset.emplace(off, f.lru.begin());
      f.by_name.emplace(std::move(key), f.lru.begin());
    } catch (...) {
      f.by_offset.erase(off);
      f.lru.pop_front();
      throw;
    }
    ++f.next;
    return at(f, off);
  }
  // Full: recycle the least recently used mapping (its offset keeps its by_offset entry).
  auto last = std::prev(f.lru.end());
  f.by_name.erase(last->first);
  last->first = std::move(key);
  f.lru.splice(f.lru.begin(), f.lru, last);
  try {
    f.by_name.emplace(last->first, last);
  } catch (...) {
    f.by_offset.erase(last->second);
    f.lru.erase(last);
    throw;
  }
  return at(f, last->second);
}

std::optional<std::string> fake_ip_pool::name_of(const ip_address& a) {
  family& f = a.v6 ? v6_ : v4_;
  auto off = offset_of(f, a);
  if (!off) {
    return std::nullopt;
  }
  auto it = f.by_offset.find(*off);
  if (it == f.by_offset.end()) {
    return std::nullopt;
  }
  f.lru.splice(f.lru.begin(), f.lru, it->second);
  return it->second->first;
}

bool fake_ip_pool::contains(const ip_address& a) const noexcept {
  const family& f = a.v6 ? v6_ : v4_;
  return masked(a, f.prefix) == f.base;
}

std::size_t fake_ip_pool::size(bool v6) const noexcept { return (v6 ? v6_ : v4_).lru.size(); }

}  // namespace nl::netstack::dns
