// A Linux TUN device (IFF_TUN | IFF_NO_PI: one IP packet per read/write) on the event
// loop. Creating one needs CAP_NET_ADMIN; the error then says so. The device disappears,
// with every route through it, when the descriptor closes (it is not made persistent).
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

namespace nl::netstack {

class tun_device {
public:
  // Creates the device `name` (e.g. "nl0"; "" lets the kernel pick tunN).
  static std::expected<tun_device, std::string> open(const boost::asio::any_io_executor& ex, const std::string& name);

  const std::string& name() const noexcept { return name_; }

  // Reads packets (at most `mtu` bytes each, larger ones are dropped by the kernel) and
  // passes each to on_packet, until close(). Reads in batches per wake-up.
  boost::asio::awaitable<void> run(std::function<void(std::span<std::byte>)> on_packet, std::size_t mtu);

  // Writes one packet now; a full device queue drops it (TCP retransmits, UDP is lossy).
  void write(std::span<const std::byte> packet) noexcept;
  void close() noexcept;

private:
  tun_device(boost::asio::posix::stream_descriptor sd, std::string name) : sd_(std::move(sd)), name_(std::move(name)) {}
  boost::asio::posix::stream_descriptor sd_;
  std::string name_;
};

}  // namespace nl::netstack
