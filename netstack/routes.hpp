// Addresses and routes for `nl-client tun`, set with iproute2's `ip` (run directly, no
// shell) and undone in reverse order on exit. Routes through the TUN vanish with the
// device anyway; the bypass routes that keep the gateway's own address off the TUN go
// through the real uplink and are removed here (after a SIGKILL they stay behind, harmless:
// a host route to the gateway via the route it had anyway).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "netstack/addr.hpp"

namespace nl::netstack {

struct cidr {
  ip_address addr;
  unsigned prefix = 0;
  bool contains(const ip_address& a) const noexcept;
  std::string to_string() const;
};
// "10.0.0.0/8", "fd00::/64", or a bare address (/32, /128); host bits must be zero.
std::optional<cidr> parse_cidr(const std::string& text);

// Runs `ip ARGS...`; returns "" on success, else the command line and what ip printed.
std::string run_ip(const std::vector<std::string>& args);

// The TUN device's own addresses: the kernel's source for captured traffic. They lie
// outside lwIP's subnets and the fake DNS pools (capture_options).
inline constexpr const char* tun_address_v4 = "198.19.255.254/32";
inline constexpr const char* tun_address_v6 = "fd6e:6c02::1/128";

// Sets `dev` up with `mtu` and a long transmit queue and gives it tun_address_v4, and
// tun_address_v6 when this host has IPv6 (*v6 tells; may be null). "" or the error.
std::string bring_up(const std::string& dev, unsigned mtu, bool* v6);

class route_guard {
public:
  route_guard() = default;
  route_guard(const route_guard&) = delete;
  route_guard& operator=(const route_guard&) = delete;
  ~route_guard() { restore(); }

  // Runs `ip do_args`; on success remembers `ip undo_args` for restore(). Returns "" or the error.
  std::string apply(std::vector<std::string> do_args, std::vector<std::string> undo_args);
  // A route for `cidr` through `dev`. "" or the error.
  std::string route_via(const std::string& cidr, const std::string& dev);
  // A host route for `gw` through whatever route reaches it now (ip route get), so that
  // traffic to the gateway never enters the TUN. "" or the error.
  std::string bypass(const ip_address& gw);
  // Undoes everything applied, newest first. Idempotent.
  void restore();

private:
  std::vector<std::vector<std::string>> undo_;
};

}  // namespace nl::netstack
