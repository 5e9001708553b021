#include "transport/quic/udp_io.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace nl::transport::quic::detail {

namespace {

error_code last_error() { return {errno, boost::system::system_category()}; }

bool blocked(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

}  // namespace

udp_batch_io::udp_batch_io(int fd, bool batching) : fd_(fd) {
  if (!batching) {
    return;
  }
  int seg = 0;
  socklen_t len = sizeof(seg);
  gso_ = ::getsockopt(fd_, SOL_UDP, UDP_SEGMENT, &seg, &len) == 0;
  int one = 1;
  gro_ = ::setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
}

error_code udp_batch_io::send(const udp_endpoint* to, const std::uint8_t* p, std::size_t n, std::size_t segment) {
  bool run = segment > 0 && segment < n;
  if (run && !gso_) {
    return send_one_by_one(to, p, n, segment);
  }
  iovec iov{const_cast<std::uint8_t*>(p), n};
  msghdr msg{};
  if (to) {
    msg.msg_name = const_cast<sockaddr*>(to->data());
    msg.msg_namelen = static_cast<socklen_t>(to->size());
  }
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
  if (run) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    auto* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
    auto seg = static_cast<std::uint16_t>(segment);
    std::memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
  }
  for (;;) {
    if (::sendmsg(fd_, &msg, MSG_DONTWAIT) >= 0) {
      return {};
    }
    if (errno == EINTR) {
      continue;
    }
    // EIO: the route's device cannot checksum-offload GSO; send these one by one from now on.
    if (run && errno == EIO) {
      gso_ = false;
      return send_one_by_one(to, p, n, segment);
    }
    return last_error();
  }
}

// Without GSO a run goes out as separate datagrams. If the socket fills up part way, the
// rest is dropped: QUIC sees it as loss and retransmits, and only the first send can
// report would_block (the caller then keeps the whole run for later).
error_code udp_batch_io::send_one_by_one(const udp_endpoint* to, const std::uint8_t* p, std::size_t n,
                                         std::size_t segment) {
  for (std::size_t off = 0; off < n; off += segment) {
    auto len = std::min(segment, n - off);
    ssize_t r;
    do {
      r = to ? ::sendto(fd_, p + off, len, MSG_DONTWAIT, to->data(), static_cast<socklen_t>(to->size()))
             : ::send(fd_, p + off, len, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (off > 0 && blocked(errno)) {
        return {};
      }
      return last_error();
    }
  }
  return {};
}

std::size_t udp_batch_io::receive(std::uint8_t* buf, std::size_t cap, udp_endpoint* from, std::size_t& segment,
                                  error_code& ec) {
  iovec iov{buf, cap};
  sockaddr_storage addr{};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof(addr);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (gro_) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  ssize_t r;
  do {
    r = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    ec = last_error();
    return 0;
  }
  ec = {};
  auto n = static_cast<std::size_t>(r);
  segment = n;
  if (msg.msg_flags & MSG_TRUNC) {
    segment = 0;  // cut short: not a whole datagram; the caller skips it
    return 0;
  }
  for (auto* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int seg = 0;
      std::memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
      if (seg > 0 && static_cast<std::size_t>(seg) < n) {
        segment = static_cast<std::size_t>(seg);
      }
    }
  }
  if (from && msg.msg_namelen > 0 && msg.msg_namelen <= from->capacity()) {
    std::memcpy(from->data(), &addr, msg.msg_namelen);
    from->resize(msg.msg_namelen);
  }
  return n;
}

}  // namespace nl::transport::quic::detail
