// The TUN capture engine: IP packets in from a TUN device, streams out to an agent.
//
//  * TCP goes through lwIP (pristine 2.1.3, NO_SYS, driven from this executor) behind a
//    small NAT (nat.hpp): each captured flow gets a fake source in lwIP's subnet and is
//    redirected to lwIP's one listening port; the original destination is recovered at
//    accept. Connects are honest: the app's SYN is held until the agent reports the
//    upstream connect result; refused -> RST, denied -> ICMP administratively prohibited,
//    unreachable/timeout/DNS failure -> ICMP host unreachable. Backpressure both ways: data
//    is acknowledged to lwIP (tcp_recved) only once the stream took it, and stream data is
//    written to lwIP only as its send buffer frees. Half-close both ways.
//  * UDP bypasses lwIP: each (src, dst) pair is a datagram stream to the agent, with idle
//    expiry and a flow cap.
//  * DNS: A/AAAA queries to port 53 are answered with fake addresses (dns.hpp) that stand
//    for the name; flows to a fake address are opened at the agent by name, so the agent
//    resolves it and its domain rules apply. Other queries are relayed as UDP.
//
// The engine knows nothing of devices: input() takes one packet, `output` emits one.
// lwIP has global state, so one capture may exist per process at a time.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "netstack/addr.hpp"
#include "transport/session.hpp"

namespace nl::netstack {

struct capture_options {
  unsigned mtu = 1500;
  // lwIP's own addresses; fake sources for the NAT come from these subnets.
  ip_address lwip_v4 = ip_address::from_v4(0xC6120001);  // 198.18.0.1/16
  unsigned lwip_v4_prefix = 16;
  ip_address lwip_v6 = ip_address::from_asio(boost::asio::ip::make_address("fd6e:6c00::1"));
  unsigned lwip_v6_prefix = 64;
  // Fake addresses handed out by the DNS answers (must be routed into the TUN).
  ip_address dns_v4 = ip_address::from_v4(0xC6130000);  // 198.19.0.0/17
  unsigned dns_v4_prefix = 17;
  ip_address dns_v6 = ip_address::from_asio(boost::asio::ip::make_address("fd6e:6c01::"));
  unsigned dns_v6_prefix = 96;
  bool fake_dns = true;
  // The TUN takes segmentation-offload writes (tun_device::offload()): lwIP then sends TCP
  // segments of up to TCP_MSS (lwipopts.h) that the kernel cuts to the MTU, instead of one
  // write per MTU-sized segment. The app's SYN is told a large MSS so that lwIP may.
  bool gso = false;
  std::size_t max_tcp_flows = 16384;
  std::size_t max_udp_flows = 1024;
  std::chrono::milliseconds udp_idle_timeout{60'000};
  std::chrono::seconds tcp_idle_timeout{7200};
  // How long a closed flow's NAT mapping stays: longer than lwIP's TIME_WAIT (2 x TCP_MSL =
  // 1 s, lwipopts.h), so the app's last retransmitted FIN or ACK still finds its flow.
  std::chrono::seconds nat_linger{3};
};

struct capture_stats {
  std::size_t tcp_flows = 0;     // TCP flows with a NAT entry (opening, open, or lingering)
  std::size_t tcp_active = 0;    // of which not yet closed
  std::size_t udp_flows = 0;
  std::uint64_t packets_in = 0, packets_out = 0, dropped = 0;
};

// Opens a stream for a captured flow; dest.host is an IP literal or a name (fake DNS).
using open_function = std::function<boost::asio::awaitable<transport::open_outcome>(proto::target dest)>;

// How the kernel should cut a TCP packet we write (segmentation offload); size 0 = as is.
// The packet's TCP checksum field then holds only the pseudo-header sum.
struct gso_request {
  std::uint16_t size = 0;         // payload bytes per segment
  std::uint16_t header_length = 0;  // IP + TCP header bytes
  std::uint16_t l4_offset = 0;    // where the TCP header starts
  bool v6 = false;
};
using output_function = std::function<void(std::span<const std::byte> packet, const gso_request& gso)>;

class capture {
public:
  capture(boost::asio::any_io_executor ex, capture_options opt, open_function open, output_function output);
  ~capture();
  capture(const capture&) = delete;
  capture& operator=(const capture&) = delete;

  // One IP packet read from the TUN. The buffer may be modified (rewritten in place).
  void input(std::span<std::byte> packet);
  // Aborts every flow (RST to the apps) and stops the timers.
  void stop();
  capture_stats stats() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

}  // namespace nl::netstack
