// netstack's address type: an IPv4 or IPv6 address as raw network-order bytes, cheap to
// copy, hash and compare (the NAT and fake-IP tables key on it). Pure; no Asio state.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace nl::netstack {

struct ip_address {
  std::array<std::uint8_t, 16> b{};  // IPv4 uses b[0..3], the rest stays zero
  bool v6 = false;

  static ip_address from_v4(std::uint32_t host_order) {
    ip_address a;
    a.b[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.b[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.b[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.b[3] = static_cast<std::uint8_t>(host_order);
    return a;
  }
  static ip_address from_bytes(std::span<const std::uint8_t> raw) {  // 4 or 16 bytes
    ip_address a;
    a.v6 = raw.size() == 16;
    std::memcpy(a.b.data(), raw.data(), a.v6 ? 16 : 4);
    return a;
  }
  static ip_address from_asio(const boost::asio::ip::address& x) {
    if (x.is_v4()) {
      return from_v4(x.to_v4().to_uint());
    }
    auto raw = x.to_v6().to_bytes();
    return from_bytes(std::span<const std::uint8_t>(raw.data(), raw.size()));
  }
  boost::asio::ip::address to_asio() const {
    if (!v6) {
      return boost::asio::ip::address_v4(v4_host());
    }
    boost::asio::ip::address_v6::bytes_type raw;
    std::memcpy(raw.data(), b.data(), 16);
    return boost::asio::ip::address_v6(raw);
  }
  std::uint32_t v4_host() const {
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  }
  std::size_t size() const { return v6 ? 16 : 4; }
  std::span<const std::uint8_t> bytes() const { return {b.data(), size()}; }
  std::string to_string() const { return to_asio().to_string(); }

  friend auto operator<=>(const ip_address&, const ip_address&) = default;
};

struct ip_address_hash {
  std::size_t operator()(const ip_address& a) const noexcept {
    std::uint64_t x, y;
    std::memcpy(&x, a.b.data(), 8);
    std::memcpy(&y, a.b.data() + 8, 8);
    return std::hash<std::uint64_t>{}(x * 0x9E3779B97F4A7C15ull ^ y ^ (a.v6 ? 1 : 0));
  }
};

}  // namespace nl::netstack
