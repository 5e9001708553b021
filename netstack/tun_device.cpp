#include "netstack/tun_device.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nl::netstack {

std::expected<tun_device, std::string> tun_device::open(const boost::asio::any_io_executor& ex, const std::string& name) {
  if (name.size() >= IFNAMSIZ) {
    return std::unexpected("TUN device name '" + name + "' is longer than " + std::to_string(IFNAMSIZ - 1) + " characters");
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == EACCES || e == EPERM) {
      return std::unexpected("cannot open /dev/net/tun: " + std::string(std::strerror(e)) +
                             ": `nl-client tun` needs root (CAP_NET_ADMIN) for the TUN device and its routes; run it with sudo");
    }
    return std::unexpected("cannot open /dev/net/tun: " + std::string(std::strerror(e)) +
                           (e == ENOENT ? " (is the tun kernel module available?)" : ""));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    ::close(fd);
    if (e == EPERM || e == EACCES) {
      return std::unexpected("cannot create TUN device '" + name + "': " + std::strerror(e) +
                             ": `nl-client tun` needs root (CAP_NET_ADMIN); run it with sudo");
    }
    if (e == EBUSY) {
      return std::unexpected("TUN device '" + name + "' is in use by another program (pick another with --dev)");
    }
    return std::unexpected("cannot create TUN device '" + name + "': " + std::strerror(e));
  }
  return tun_device(boost::asio::posix::stream_descriptor(ex, fd), ifr.ifr_name);
}

boost::asio::awaitable<void> tun_device::run(std::function<void(std::span<std::byte>)> on_packet, std::size_t mtu) {
  std::vector<std::byte> buf(mtu + 64);
  while (sd_.is_open()) {
    boost::system::error_code ec;
    co_await sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec) break;
    // Up to 64 packets per wake-up; then let other work run.
    for (int i = 0; i < 64 && sd_.is_open(); ++i) {
      auto n = ::read(sd_.native_handle(), buf.data(), buf.size());
      if (n <= 0) break;  // EAGAIN (drained), or an error the next wait reports
      on_packet(std::span<std::byte>(buf.data(), static_cast<std::size_t>(n)));
    }
  }
}

void tun_device::write(std::span<const std::byte> packet) noexcept {
  if (sd_.is_open()) {
    (void)!::write(sd_.native_handle(), packet.data(), packet.size());
  }
}

void tun_device::close() noexcept {
  boost::system::error_code ec;
  sd_.close(ec);
}

}  // namespace nl::netstack
