// The NAT in front of lwIP, as a pure table (time is passed in). lwIP accepts only packets
// addressed to itself, so each TCP flow captured on the TUN gets a unique fake source
// address in lwIP's subnet; the glue rewrites app->dest packets to fake->lwip:listen_port
// and lwIP's replies back, and recovers the original destination at accept from the fake
// address. The table owns no packets and no sockets; it only maps and expires.
//
// Lifetimes: an entry lives while its flow is active; after close it lingers for
// time_wait (so late retransmissions still map, and the fake address is not reused while
// the app may still send to it); entries idle longer than idle_timeout are swept. The table
// is capped at max_flows (SYN-flood bound): insert() then fails and the glue answers RST.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "netstack/addr.hpp"

namespace nl::netstack {

using nat_clock = std::chrono::steady_clock;

// The original 4-tuple as seen on the TUN: the app's source and the real destination.
struct flow_key {
  ip_address src, dst;
  std::uint16_t sport = 0, dport = 0;
  friend bool operator==(const flow_key&, const flow_key&) = default;
};
struct flow_key_hash {
  std::size_t operator()(const flow_key& k) const noexcept;
};

struct nat_entry {
  std::uint64_t id = 0;          // unique, never reused within a table's life
  flow_key orig;
  ip_address fake;               // source lwIP sees; same family as orig.src
  nat_clock::time_point last_seen{};
  std::optional<nat_clock::time_point> closed_at;  // set by linger()
};

struct nat_config {
  // lwIP's subnets; fake sources are drawn from them, never equal to lwip_v4/lwip_v6 itself,
  // nor the network or (v4) broadcast address.
  ip_address lwip_v4;            // e.g. 198.18.0.1
  unsigned v4_prefix = 16;       // 8..30
  ip_address lwip_v6;            // e.g. fd6e:6c00::1
  unsigned v6_prefix = 64;       // 64..126; fake sources use the low 32 bits at most
  std::size_t max_flows = 16384;
  std::chrono::seconds idle_timeout{7200};    // an open flow with no packet for this long
  std::chrono::seconds time_wait{15};        // how long a closed entry lingers
};

enum class nat_error {
  table_full,    // max_flows entries live
  no_address,    // the fake pool for that family is exhausted (all in use or lingering)
};

class nat_table {
public:
  // Throws std::invalid_argument if a prefix is outside its range. A family whose lwip_*
  // address is not of that family (e.g. no IPv6 configured) has an empty pool.
  explicit nat_table(nat_config cfg);

  // Lookups; null when absent. Neither touches last_seen (call touch()).
  nat_entry* find(const flow_key& k) noexcept;
  nat_entry* find_fake(const ip_address& fake) noexcept;
  nat_entry* find_id(std::uint64_t id) noexcept;

  // A new entry for k with a fresh fake source of k's family. k must not be present (if it
  // is, the existing entry is returned).
  // Fake addresses are allocated round-robin from the pool, skipping those in use, so a
  // just-freed address is reused as late as possible.
  std::expected<nat_entry*, nat_error> insert(const flow_key& k, nat_clock::time_point now);

  void touch(nat_entry& e, nat_clock::time_point now) noexcept { e.last_seen = now; }
  // The flow closed: keep the mapping for time_wait from now (idempotent: keeps the first).
  void linger(nat_entry& e, nat_clock::time_point now) noexcept;
  // Removes now (e.g. the flow was reset and nothing will follow).
  void erase(std::uint64_t id) noexcept;

  // Removes entries whose linger expired or that were idle past idle_timeout; returns the
  // ids of the removed entries that had NOT been lingering (the glue must abort those flows).
  std::vector<std::uint64_t> sweep(nat_clock::time_point now);

  std::size_t size() const noexcept { return by_id_.size(); }
  const nat_config& config() const noexcept { return cfg_; }

private:
  nat_config cfg_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<nat_entry>> by_id_;
  std::unordered_map<flow_key, nat_entry*, flow_key_hash> by_key_;
  std::unordered_map<ip_address, nat_entry*, ip_address_hash> by_fake_;
  std::uint64_t cursor_v4_ = 0, cursor_v6_ = 0;  // round-robin position in each pool
};

}  // namespace nl::netstack
