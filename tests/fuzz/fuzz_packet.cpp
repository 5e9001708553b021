// The TUN capture's packet code on arbitrary bytes, as the kernel could hand them over:
//  1. parse(); whatever parses has offsets inside the packet, survives rewrite() of its
//     addresses and ports (re-parses the same, and a transport checksum that verified still
//     verifies, as does the IPv4 header checksum), and can be answered with a RST, an ICMP
//     unreachable and a UDP datagram that parse and verify themselves;
//  2. the same bytes as a script for a small nat_table, checked against a plain model.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "netstack/nat.hpp"
#include "netstack/packet.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::netstack;

namespace {

// Cycles through the input for the values the checks need (addresses, ports, codes).
class source {
public:
  explicit source(std::span<const std::byte> in) : in_(in) {}
  bool done() const { return pos_ >= in_.size(); }
  std::uint8_t u8() {
    if (in_.empty()) {
      return 0;
    }
    auto v = std::to_integer<std::uint8_t>(in_[pos_ % in_.size()]);
    ++pos_;
    return v;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
  ip_address addr(bool v6) {
    ip_address a;
    a.v6 = v6;
    for (std::size_t i = 0; i < a.size(); ++i) {
      a.b[i] = u8();
    }
    return a;
  }

private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

bool ipv4_header_ok(std::span<const std::byte> pkt, const packet_info& info) {
  return checksum_fold(checksum_add(0, pkt.first(info.l4_offset))) == 0 || info.version != 4;
}

std::uint16_t get16(std::span<const std::byte> p, std::size_t off) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[off]) << 8 | std::to_integer<unsigned>(p[off + 1]));
}

void check_info(std::span<const std::byte> pkt, const packet_info& i) {
  NL_FUZZ_CHECK(i.version == 4 || i.version == 6);
  NL_FUZZ_CHECK(i.src.v6 == (i.version == 6) && i.dst.v6 == (i.version == 6));
  NL_FUZZ_CHECK(i.total_length <= pkt.size());
  NL_FUZZ_CHECK(i.l4_offset >= (i.version == 6 ? 40u : 20u));
  NL_FUZZ_CHECK(i.l4_offset <= i.total_length && i.l4_length == i.total_length - i.l4_offset);
  if (i.proto == ipproto::tcp || i.proto == ipproto::udp) {
    NL_FUZZ_CHECK(i.payload_offset >= i.l4_offset + (i.proto == ipproto::tcp ? 20u : 8u));
    NL_FUZZ_CHECK(i.payload_offset <= i.total_length);
    NL_FUZZ_CHECK(i.payload_length <= i.total_length - i.payload_offset);
    NL_FUZZ_CHECK(get16(pkt, i.l4_offset) == i.sport && get16(pkt, i.l4_offset + 2) == i.dport);
  } else {
    NL_FUZZ_CHECK(i.sport == 0 && i.dport == 0 && i.payload_offset == 0 && i.payload_length == 0);
  }
  if (i.proto != ipproto::tcp) {
    NL_FUZZ_CHECK(i.tcp_flags == 0 && i.seq == 0 && i.ack == 0);
  }
}

// Something we built: parses as the given protocol and its checksums verify.
packet_info check_built(std::span<const std::byte> out, std::uint8_t proto) {
  auto r = parse(out);
  NL_FUZZ_CHECK(r.has_value());
  check_info(out, *r);
  NL_FUZZ_CHECK(r->proto == proto && r->total_length == out.size());
  NL_FUZZ_CHECK(ipv4_header_ok(out, *r));
  if (proto == ipproto::tcp || proto == ipproto::udp) {
    NL_FUZZ_CHECK(l4_checksum_ok(out, *r));
  } else {
    auto icmp = out.subspan(r->l4_offset);
    std::uint32_t sum = 0;
    if (r->version == 6) {  // the ICMPv6 pseudo-header
      sum = checksum_add(checksum_add(0, std::as_bytes(r->src.bytes())), std::as_bytes(r->dst.bytes()));
      sum += ipproto::icmpv6 + static_cast<std::uint32_t>(icmp.size());
    }
    NL_FUZZ_CHECK(checksum_fold(checksum_add(sum, icmp)) == 0);
  }
  return *r;
}

void check_rewrite(std::span<const std::byte> in, const packet_info& info, source& src) {
  std::vector<std::byte> copy(in.begin(), in.end());
  bool l4_ok = l4_checksum_ok(in, info);
  bool ip_ok = ipv4_header_ok(in, info);
  bool v6 = info.version == 6;
  auto nsrc = src.addr(v6), ndst = src.addr(v6);
  auto nsport = src.u16(), ndport = src.u16();
  packet_info moved = info;
  NL_FUZZ_CHECK(rewrite(copy, moved, nsrc, nsport, ndst, ndport));
  NL_FUZZ_CHECK(moved.src == nsrc && moved.dst == ndst && moved.sport == nsport && moved.dport == ndport);
  auto again = parse(copy);
  NL_FUZZ_CHECK(again.has_value());
  NL_FUZZ_CHECK(again->proto == info.proto && again->version == info.version);
  NL_FUZZ_CHECK(again->l4_offset == info.l4_offset && again->l4_length == info.l4_length);
  NL_FUZZ_CHECK(again->total_length == info.total_length && again->payload_offset == info.payload_offset);
  NL_FUZZ_CHECK(again->payload_length == info.payload_length && again->tcp_flags == info.tcp_flags);
  NL_FUZZ_CHECK(again->src == nsrc && again->dst == ndst && again->sport == nsport && again->dport == ndport);
  if (l4_ok) {
    NL_FUZZ_CHECK(l4_checksum_ok(copy, *again));
  }
  if (ip_ok) {
    NL_FUZZ_CHECK(ipv4_header_ok(copy, *again));
  }
  // And back: the original bytes outside the checksum fields.
  NL_FUZZ_CHECK(rewrite(copy, moved, info.src, info.sport, info.dst, info.dport));
  std::size_t l4sum = info.l4_offset + (info.proto == ipproto::tcp ? 16 : 6);
  for (std::size_t k = 0; k < copy.size(); ++k) {
    bool field = (k == l4sum || k == l4sum + 1) || (!v6 && (k == 10 || k == 11));
    NL_FUZZ_CHECK(field || copy[k] == in[k]);
  }
  NL_FUZZ_CHECK(!l4_ok || l4_checksum_ok(copy, info));
  NL_FUZZ_CHECK(!ip_ok || ipv4_header_ok(copy, info));
  // A family mismatch is refused and leaves the packet alone.
  auto before = copy;
  auto refused = info;
  NL_FUZZ_CHECK(!rewrite(copy, refused, src.addr(!v6), 1, info.dst, 2));
  NL_FUZZ_CHECK(copy == before && refused.src == info.src);
}

void check_builders(std::span<const std::byte> in, const packet_info& info, source& src) {
  static std::array<std::byte, 65535 + 40> out;
  if (info.proto == ipproto::tcp) {
    auto n = build_tcp_rst(info, std::span(out).first(60));
    NL_FUZZ_CHECK((n == 0) == ((info.tcp_flags & tcpflag::rst) != 0));
    if (n != 0) {
      auto r = check_built(std::span(out).first(n), ipproto::tcp);
      NL_FUZZ_CHECK(r.src == info.dst && r.dst == info.src && r.sport == info.dport && r.dport == info.sport);
      NL_FUZZ_CHECK((r.tcp_flags & tcpflag::rst) != 0 && r.payload_length == 0);
      if (info.tcp_flags & tcpflag::ack) {
        NL_FUZZ_CHECK(r.seq == info.ack && r.tcp_flags == tcpflag::rst);
      } else {
        NL_FUZZ_CHECK(r.seq == 0 && r.tcp_flags == (tcpflag::rst | tcpflag::ack));
      }
      NL_FUZZ_CHECK(build_tcp_rst(info, std::span(out).first(n - 1)) == 0);
    }
  }
  auto code = src.u8();
  auto n = build_icmp_unreachable(info, in, code, std::span(out).first(1500));
  if (n != 0) {
    auto r = check_built(std::span(out).first(n), info.version == 6 ? ipproto::icmpv6 : ipproto::icmp);
    NL_FUZZ_CHECK(r.src == info.dst && r.dst == info.src);
    NL_FUZZ_CHECK(n <= (info.version == 6 ? 1280u : 576u));
    NL_FUZZ_CHECK(r.l4_length == 8 + std::min<std::size_t>(info.total_length, info.version == 6 ? 1232 : 548));
    NL_FUZZ_CHECK(std::equal(out.begin() + r.l4_offset + 8, out.begin() + n, in.begin()));
  } else {
    // Only ICMP errors go unanswered.
    NL_FUZZ_CHECK(info.proto == (info.version == 6 ? ipproto::icmpv6 : ipproto::icmp));
  }
  if (info.proto == ipproto::udp) {
    auto payload = in.subspan(info.payload_offset, info.payload_length);
    auto m = build_udp(info.dst, info.dport, info.src, info.sport, payload, out);
    if (info.version == 4 && payload.size() > 65535 - 28) {
      NL_FUZZ_CHECK(m == 0);
    } else {
      NL_FUZZ_CHECK(m != 0);
      auto r = check_built(std::span(out).first(m), ipproto::udp);
      NL_FUZZ_CHECK(r.payload_length == payload.size() &&
                    std::equal(payload.begin(), payload.end(), out.begin() + r.payload_offset));
    }
  }
}

// A nat_table driven by the input, against a model of what it should hold.
void nat_script(std::span<const std::byte> in) {
  source s(in);
  nat_config cfg;
  cfg.lwip_v4 = s.addr(false);
  cfg.v4_prefix = 26 + s.u8() % 5;  // tiny pools: 62 .. 2 hosts
  cfg.lwip_v6 = s.addr(true);
  cfg.v6_prefix = 120 + s.u8() % 7;
  cfg.max_flows = 1 + s.u8() % 48;
  cfg.idle_timeout = std::chrono::seconds(1 + s.u8());
  cfg.time_wait = std::chrono::seconds(s.u8() % 32);
  nat_table t(cfg);

  struct model_entry {
    flow_key key;
    ip_address fake;
    nat_clock::time_point last_seen;
    std::optional<nat_clock::time_point> closed_at;
  };
  std::map<std::uint64_t, model_entry> model;
  auto pool_size = [&](bool v6) {
    const auto& lwip = v6 ? cfg.lwip_v6 : cfg.lwip_v4;
    unsigned bits = v6 ? 128 - cfg.v6_prefix : 32 - cfg.v4_prefix;
    std::size_t n = (std::size_t{1} << bits) - (v6 ? 1 : 2);
    unsigned host = 0;  // lwIP's host part: inside the pool unless 0 or (v4) all ones
    for (unsigned i = 0; i < bits; ++i) {
      host |= ((lwip.b[lwip.size() - 1 - i / 8] >> (i % 8)) & 1u) << i;
    }
    bool inside = host != 0 && (v6 || host != (1u << bits) - 1);
    return n - (inside ? 1 : 0);
  };
  auto in_pool = [&](const ip_address& a) {
    const auto& lwip = a.v6 ? cfg.lwip_v6 : cfg.lwip_v4;
    unsigned prefix = a.v6 ? cfg.v6_prefix : cfg.v4_prefix;
    unsigned bits = static_cast<unsigned>(a.size()) * 8 - prefix;
    unsigned host = 0;
    for (unsigned i = 0; i < prefix; ++i) {
      unsigned byte = i / 8, bit = 7 - i % 8;
      if (((a.b[byte] >> bit) & 1) != ((lwip.b[byte] >> bit) & 1)) {
        return false;
      }
    }
    for (unsigned i = 0; i < bits; ++i) {
      host |= ((a.b[a.size() - 1 - i / 8] >> (i % 8)) & 1u) << i;
    }
    return a != lwip && host != 0 && (a.v6 || host != (1u << bits) - 1);
  };

  nat_clock::time_point now{};
  for (int step = 0; step < 256 && !s.done(); ++step) {
    auto op = s.u8();
    flow_key k;
    bool v6 = op & 0x80;
    k.src = ip_address::from_v4(0x0a000002);  // 10.0.0.2 or 0a00:0002::
    k.src.v6 = v6;
    k.dst = ip_address::from_v4(0x5db8d822);
    k.dst.v6 = v6;
    k.sport = s.u8() % 16;  // a small key space, so lookups hit
    k.dport = 443;
    switch (op % 6) {
      case 0:
      case 1: {  // insert
        auto* existing = t.find(k);
        auto r = t.insert(k, now);
        if (existing) {
          NL_FUZZ_CHECK(r && *r == existing);
          break;
        }
        if (!r) {
          if (r.error() == nat_error::table_full) {
            NL_FUZZ_CHECK(model.size() >= cfg.max_flows);
          } else {
            NL_FUZZ_CHECK(model.size() < cfg.max_flows);
            std::size_t used = 0;
            for (auto& [id, e] : model) {
              used += e.fake.v6 == v6;
            }
            NL_FUZZ_CHECK(used == pool_size(v6));
          }
          break;
        }
        auto* e = *r;
        NL_FUZZ_CHECK(model.size() < cfg.max_flows);
        NL_FUZZ_CHECK(e->orig == k && e->fake.v6 == v6 && e->last_seen == now && !e->closed_at);
        NL_FUZZ_CHECK(in_pool(e->fake));
        NL_FUZZ_CHECK(model.empty() || e->id > model.rbegin()->first);
        for (auto& [id, m] : model) {
          NL_FUZZ_CHECK(m.fake != e->fake);
        }
        model[e->id] = {k, e->fake, now, std::nullopt};
        break;
      }
      case 2: {  // touch
        if (auto* e = t.find(k)) {
          t.touch(*e, now);
          model.at(e->id).last_seen = now;
        }
        break;
      }
      case 3: {  // linger
        if (auto* e = t.find(k)) {
          t.linger(*e, now);
          auto& m = model.at(e->id);
          if (!m.closed_at) {
            m.closed_at = now;
          }
          NL_FUZZ_CHECK(e->closed_at == m.closed_at);
        }
        break;
      }
      case 4: {  // erase
        if (auto* e = t.find(k)) {
          auto id = e->id;
          t.erase(id);
          model.erase(id);
        }
        break;
      }
      case 5: {  // time passes, sweep
        now += std::chrono::seconds(s.u8());
        std::vector<std::uint64_t> want;
        for (auto it = model.begin(); it != model.end();) {
          auto& m = it->second;
          bool expired = m.closed_at ? now - *m.closed_at >= cfg.time_wait : now - m.last_seen >= cfg.idle_timeout;
          if (expired && !m.closed_at) {
            want.push_back(it->first);
          }
          it = expired ? model.erase(it) : std::next(it);
        }
        NL_FUZZ_CHECK(t.sweep(now) == want);
        break;
      }
    }
    NL_FUZZ_CHECK(t.size() == model.size());
    for (auto& [id, m] : model) {
      auto* e = t.find_id(id);
      NL_FUZZ_CHECK(e && t.find(m.key) == e && t.find_fake(m.fake) == e && e->fake == m.fake);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  (void)checksum_fold(checksum_add(0, in));

  if (auto r = parse(in)) {
    check_info(in, *r);
    source src(in);
    if (r->proto == ipproto::tcp || r->proto == ipproto::udp) {
      check_rewrite(in, *r, src);
    } else {
      packet_info copy = *r;
      std::vector<std::byte> bytes(in.begin(), in.end());
      NL_FUZZ_CHECK(!rewrite(bytes, copy, r->src, 1, r->dst, 2));
      NL_FUZZ_CHECK(!l4_checksum_ok(in, *r));
    }
    check_builders(in, *r, src);
  } else {
    NL_FUZZ_CHECK(!to_string(r.error()).empty());
  }

  nat_script(in);
  return 0;
}
