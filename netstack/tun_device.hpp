// A Linux TUN device (IFF_TUN | IFF_NO_PI: one IP packet per read/write) on the event
// loop. Creating one needs CAP_NET_ADMIN; the error then says so. The device disappears,
// with every route through it, when the descriptor closes (it is not made persistent).
//
// Offload (IFF_VNET_HDR + TUNSETOFFLOAD TSO4/TSO6/CSUM): the kernel may then hand us one
// TCP "super-packet" of up to 64 KiB where it would otherwise send ~45 MTU-sized ones, so
// the capture reads, NATs and feeds lwIP once per 64 KiB instead of once per segment.
// Such packets carry a partial TCP/UDP checksum; lwIP does not verify checksums here
// (lwipopts.h) and UDP payloads are forwarded, so nothing downstream depends on it.
// Packets we write carry an empty virtio header (no offload). Without kernel support the
// device still works, one MTU-sized packet per read.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <cstddef>
#include <expected>
#include <functional>
#include <span>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "netstack/capture.hpp"

namespace nl::netstack {

class tun_device {
public:
  // Creates the device `name` (e.g. "nl0"; "" lets the kernel pick tunN).
  static std::expected<tun_device, std::string> open(const boost::asio::any_io_executor& ex, const std::string& name,
                                                     bool offload = true);

  const std::string& name() const noexcept { return name_; }
  bool offload() const noexcept { return offload_; }

  // Reads packets (at most `mtu` bytes each, larger ones are dropped by the kernel) and
  // passes each to on_packet, until close(). Reads in batches per wake-up.
  boost::asio::awaitable<void> run(std::function<void(std::span<std::byte>)> on_packet, std::size_t mtu);

  // Writes one packet now; a full device queue drops it (TCP retransmits, UDP is lossy).
  // With gso.size the kernel cuts a TCP packet into segments of that size (offload() only).
  void write(std::span<const std::byte> packet, const gso_request& gso = {}) noexcept;
  void close() noexcept;

private:
  tun_device(boost::asio::posix::stream_descriptor sd, std::string name, bool vnet, bool offload)
      : sd_(std::move(sd)), name_(std::move(name)), vnet_(vnet), offload_(offload) {}
  boost::asio::posix::stream_descriptor sd_;
  std::string name_;
  bool vnet_ = false;     // every read and write starts with a virtio_net_hdr
  bool offload_ = false;  // the kernel may send GSO super-packets
};

}  // namespace nl::netstack
