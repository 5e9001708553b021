#include "proto/datagram.hpp"

namespace nl::proto {

datagram_view parse_datagram(std::span<const std::byte> in) noexcept {
  datagram_view v;
  if (in.size() < datagram_header_size) {
    return v;
  }
  auto len = (std::to_integer<std::size_t>(in[0]) << 8) | std::to_integer<std::size_t>(in[1]);
  if (len > max_datagram) {
    v.status = parse_status::malformed;
    return v;
  }
  if (in.size() - datagram_header_size < len) {
    return v;
  }
  v.status = parse_status::ok;
  v.payload = in.subspan(datagram_header_size, len);
  v.consumed = datagram_header_size + len;
  return v;
}

std::array<std::byte, datagram_header_size> datagram_header(std::size_t size) noexcept {
  return {static_cast<std::byte>((size >> 8) & 0xff), static_cast<std::byte>(size & 0xff)};
}

}  // namespace nl::proto
