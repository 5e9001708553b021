#include "netstack/nat.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace nl::netstack {

namespace {

// splitmix64's finaliser: every input bit affects every output bit.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// The fake pool of one family: the addresses base + offset for offset in [1, count],
// except `self` (lwIP's own address). base has all host bits clear.
struct pool {
  ip_address base;
  std::uint64_t count = 0;
  ip_address self;

  ip_address at(std::uint64_t offset) const noexcept {
    ip_address a = base;
    std::size_t last = a.size() - 1;
    // Offsets are < 2^32 and within the host bits, which are zero in base.
    for (std::size_t i = 0; i < 4; ++i) {
      a.b[last - i] = static_cast<std::uint8_t>(a.b[last - i] | static_cast<std::uint8_t>(offset >> (8 * i)));
    }
    return a;
  }
};

// a with the bits after the first `prefix` cleared.
ip_address network_of(ip_address a, unsigned prefix) noexcept {
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned bit = static_cast<unsigned>(i) * 8;
    if (bit >= prefix) {
      a.b[i] = 0;
    } else if (prefix - bit < 8) {
      a.b[i] = static_cast<std::uint8_t>(a.b[i] & (0xff00u >> (prefix - bit)));
    }
  }
  return a;
}

pool pool_v4(const nat_config& cfg) noexcept {
  pool p;
  if (cfg.lwip_v4.v6) {
    return p;  // no IPv4 subnet configured: the pool is empty
  }
  p.base = network_of(cfg.lwip_v4, cfg.v4_prefix);
  p.count = (std::uint64_t{1} << (32 - cfg.v4_prefix)) - 2;  // without network and broadcast
  p.self = cfg.lwip_v4;
  return p;
}

pool pool_v6(const nat_config& cfg) noexcept {
  pool p;
  if (!cfg.lwip_v6.v6) {
    return p;
  }
  p.base = network_of(cfg.lwip_v6, cfg.v6_prefix);
  unsigned host_bits = 128 - cfg.v6_prefix;
  p.count = host_bits >= 32 ? 0xffffffffull : (std::uint64_t{1} << host_bits) - 1;
  p.self = cfg.lwip_v6;
  return p;
}

}  // namespace

std::size_t flow_key_hash::operator()(const flow_key& k) const noexcept {
  ip_address_hash h;
  std::uint64_t x = mix(h(k.src) + 0x9e3779b97f4a7c15ull);
  x = mix(x ^ h(k.dst));
  x = mix(x ^ ((std::uint64_t{k.sport} << 16) | k.dport));
  return static_cast<std::size_t>(x);
}

nat_table::nat_table(nat_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.v4_prefix < 8 || cfg_.v4_prefix > 30) {
    throw std::invalid_argument("nat_table: v4_prefix must be 8..30");
  }
  if (cfg_.v6_prefix < 64 || cfg_.v6_prefix > 126) {
    throw std::invalid_argument("nat_table: v6_prefix must be 64..126");
  }
}

nat_entry* nat_table::find(const flow_key& k) noexcept {
  auto it = by_key_.find(k);
  return it == by_key_.end() ? nullptr : it->second;
}

nat_entry* nat_table::find_fake(const ip_address& fake) noexcept {
  auto it = by_fake_.find(fake);
  return it == by_fake_.end() ? nullptr : it->second;
}

nat_entry* nat_table::find_id(std::uint64_t id) noexcept {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

std::expected<nat_entry*, nat_error> nat_table::insert(const flow_key& k, nat_clock::time_point now) {
  if (auto* e = find(k)) {
    return e;  // a contract violation; answering with the existing entry keeps the maps consistent
  }
  if (by_id_.size() >= cfg_.max_flows) {
    return std::unexpected(nat_error::table_full);
  }
  bool v6 = k.src.v6;
  pool p = v6 ? pool_v6(cfg_) : pool_v4(cfg_);
  std::uint64_t& cursor = v6 ? cursor_v6_ : cursor_v4_;
  // At most by_fake_.size() addresses are in use and one is lwIP's own, so within that many
  // + 1 steps from the cursor a free one turns up unless the whole pool is taken.
  std::uint64_t steps = std::min<std::uint64_t>(p.count, by_fake_.size() + 2);
  for (std::uint64_t i = 0; i < steps; ++i) {
    std::uint64_t index = (cursor + i) % p.count;
    ip_address fake = p.at(index + 1);
    if (fake == p.self || by_fake_.contains(fake)) {
      continue;
    }
    cursor = (index + 1) % p.count;
    auto e = std::make_unique<nat_entry>();
    e->id = next_id_++;
    e->orig = k;
    e->fake = fake;
    e->last_seen = now;
    auto* raw = e.get();
    by_id_.emplace(raw->id, std::move(e));
    by_key_.emplace(k, raw);
    by_fake_.emplace(fake, raw);
    return raw;
  }
  return std::unexpected(nat_error::no_address);
}

void nat_table::linger(nat_entry& e, nat_clock::time_point now) noexcept {
  if (!e.closed_at) {
    e.closed_at = now;
  }
}

void nat_table::erase(std::uint64_t id) noexcept {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return;
  }
  by_key_.erase(it->second->orig);
  by_fake_.erase(it->second->fake);
  by_id_.erase(it);
}

std::vector<std::uint64_t> nat_table::sweep(nat_clock::time_point now) {
  std::vector<std::uint64_t> aborted;
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    const nat_entry& e = *it->second;
    bool expired = e.closed_at ? now - *e.closed_at >= cfg_.time_wait : now - e.last_seen >= cfg_.idle_timeout;
    if (!expired) {
      ++it;
      continue;
    }
    if (!e.closed_at) {
      aborted.push_back(e.id);
    }
    by_key_.erase(e.orig);
    by_fake_.erase(e.fake);
    it = by_id_.erase(it);
  }
  std::sort(aborted.begin(), aborted.end());
  return aborted;
}

}  // namespace nl::netstack
