// Internal to transport/quic: UDP send and receive in batches, the Linux way.
//
// Send: one sendmsg() carries a run of equal-sized QUIC packets (the last may be shorter)
// with UDP_SEGMENT (GSO): the kernel cuts it into datagrams, so a 64 KiB burst costs one
// syscall instead of ~45. Receive: with UDP_GRO the kernel hands over a run of datagrams
// from one sender as one buffer plus the segment size, which recv_batch() reports so the
// caller can split it. Both fall back to one datagram per call where the kernel or the
// device says no (EIO from a GSO send turns GSO off for that socket).
// Thread-safety: one executor per socket.
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/asio/ip/udp.hpp>
#include <boost/system/error_code.hpp>

namespace nl::transport::quic::detail {

using udp_endpoint = boost::asio::ip::udp::endpoint;
using boost::system::error_code;

// Most segments one GSO send may carry (the kernel's UDP_MAX_SEGMENTS), and the most bytes
// (a UDP datagram's payload limit, before the kernel cuts it).
inline constexpr std::size_t max_gso_segments = 64;
inline constexpr std::size_t max_gso_bytes = 65000;

class udp_batch_io {
public:
  // Turns on GRO for the socket (receiving coalesced runs) and probes GSO support;
  // batching = false sends and receives one datagram per call (tests use it for the
  // path a kernel without GSO/GRO takes).
  explicit udp_batch_io(int fd, bool batching = true);

  bool gso() const noexcept { return gso_; }

  // Sends `n` bytes at `p` to `to` (nullptr: the connected peer). segment > 0 and < n:
  // the buffer is a run of datagrams of `segment` bytes each (the last may be shorter).
  // would_block / try_again mean nothing was sent.
  error_code send(const udp_endpoint* to, const std::uint8_t* p, std::size_t n, std::size_t segment);

  // Receives one datagram or one GRO run into [buf, buf + cap). On success returns its
  // length, sets `from` (when not null) and `segment` (the datagram size within the run;
  // equal to the length for a single datagram).
  std::size_t receive(std::uint8_t* buf, std::size_t cap, udp_endpoint* from, std::size_t& segment,
                      error_code& ec);

private:
  error_code send_one_by_one(const udp_endpoint* to, const std::uint8_t* p, std::size_t n, std::size_t segment);

  int fd_;
  bool gso_ = false;
  bool gro_ = false;
};

}  // namespace nl::transport::quic::detail
