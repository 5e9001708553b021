#include "netstack/tun_device.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nl::netstack {

namespace {
// struct virtio_net_hdr of <linux/virtio_net.h> (which C++ cannot include: a member is
// named `class`): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
struct vnet_hdr {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = 0;  // VIRTIO_NET_HDR_GSO_NONE
  std::uint16_t hdr_len = 0, gso_size = 0, csum_start = 0, csum_offset = 0;
};
static_assert(sizeof(vnet_hdr) == 10);
constexpr std::size_t vnet_size = sizeof(vnet_hdr);
}  // namespace

std::expected<tun_device, std::string> tun_device::open(const boost::asio::any_io_executor& ex, const std::string& name,
                                                        bool offload) {
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
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
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
  bool vnet = offload, gso = false;
  if (vnet) {
    int size = static_cast<int>(vnet_size);
    gso = ::ioctl(fd, TUNSETVNETHDRSZ, &size) == 0 &&
          ::ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) == 0;
    if (!gso) {
      (void)::ioctl(fd, TUNSETOFFLOAD, 0UL);  // keep the header, without offloads
    }
  }
  return tun_device(boost::asio::posix::stream_descriptor(ex, fd), ifr.ifr_name, vnet, gso);
}

boost::asio::awaitable<void> tun_device::run(std::function<void(std::span<std::byte>)> on_packet, std::size_t mtu) {
  // With offload a read may hold a 64 KiB super-packet whatever the MTU.
  std::vector<std::byte> buf(vnet_size + (offload_ ? 65536 : mtu + 64));
  const std::size_t skip = vnet_ ? vnet_size : 0;
  while (sd_.is_open()) {
    boost::system::error_code ec;
    co_await sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec) break;
    // Up to 64 packets per wake-up; then let other work run.
    for (int i = 0; i < 64 && sd_.is_open(); ++i) {
      auto n = ::read(sd_.native_handle(), buf.data(), buf.size());
      if (n <= 0) break;  // EAGAIN (drained), or an error the next wait reports
      if (static_cast<std::size_t>(n) <= skip) continue;
      on_packet(std::span<std::byte>(buf.data() + skip, static_cast<std::size_t>(n) - skip));
    }
  }
}

void tun_device::write(std::span<const std::byte> packet, const gso_request& gso) noexcept {
  if (!sd_.is_open()) return;
  if (vnet_) {
    vnet_hdr h{};  // default: complete checksums, no segmentation
    if (gso.size && offload_) {
      h.flags = 1;                          // VIRTIO_NET_HDR_F_NEEDS_CSUM
      h.gso_type = gso.v6 ? 4 : 1;          // VIRTIO_NET_HDR_GSO_TCPV6 / _TCPV4
      h.hdr_len = gso.header_length;
      h.gso_size = gso.size;
      h.csum_start = gso.l4_offset;
      h.csum_offset = 16;                   // the TCP checksum field
    }
    iovec iov[2] = {{&h, vnet_size}, {const_cast<std::byte*>(packet.data()), packet.size()}};
    (void)!::writev(sd_.native_handle(), iov, 2);
  } else {
    (void)!::write(sd_.native_handle(), packet.data(), packet.size());
  }
}

void tun_device::close() noexcept {
  boost::system::error_code ec;
  sd_.close(ec);
}

}  // namespace nl::netstack
