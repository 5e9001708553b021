// Datagram streams: how UDP flows travel inside an nl stream (one stream per flow). Each
// datagram is a 2-byte big-endian length followed by that many bytes; boundaries survive
// however the stream's bytes are chunked on the way. Pure functions over byte spans.
// Thread-safety: pure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/frame.hpp"

namespace nl::proto {

inline constexpr std::size_t datagram_header_size = 2;
// Largest datagram a flow carries: the largest UDP payload over IPv4.
inline constexpr std::size_t max_datagram = 65507;

struct datagram_view {
  parse_status status = parse_status::incomplete;
  std::span<const std::byte> payload;  // when ok
  std::size_t consumed = 0;            // header + payload, when ok
};

// Looks at the front of `in`. A length above max_datagram is malformed.
datagram_view parse_datagram(std::span<const std::byte> in) noexcept;

// The header for a payload of `size` bytes (size <= max_datagram).
std::array<std::byte, datagram_header_size> datagram_header(std::size_t size) noexcept;

}  // namespace nl::proto
