// How many of something (connections being set up, handshakes) each client address holds
// at once, against a cap, so that one source cannot take every place a listener has.
// An IPv6 address counts by its /64, the block one host or one customer usually gets
// (any address in it is the same source); an IPv4-mapped IPv6 address counts as its
// IPv4 address. Only addresses with something held take memory.
// Thread-safety: none (one executor).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace nl::transport {

class address_quota {
public:
  // per_address = 0: no cap (counts are still kept, for the logs).
  explicit address_quota(std::size_t per_address) : cap_(per_address) {}

  // Takes one place for `a`; false (nothing taken) when `a` already holds the cap.
  bool try_take(const boost::asio::ip::address& a);
  // Gives back a place taken by try_take().
  void give_back(const boost::asio::ip::address& a);

  std::size_t held(const boost::asio::ip::address& a) const;
  std::size_t sources() const noexcept { return held_.size(); }  // addresses holding any
  std::size_t total() const noexcept { return total_; }          // places held, all addresses

private:
  using key = std::array<std::uint8_t, 16>;
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  static key key_of(const boost::asio::ip::address& a);

  std::size_t cap_;
  std::size_t total_ = 0;
  std::unordered_map<key, std::size_t, key_hash> held_;
};

}  // namespace nl::transport
