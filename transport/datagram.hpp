// UDP flows over streams: one stream per flow carrying length-prefixed datagrams
// (proto/datagram.hpp). write_datagram() sends one datagram as one stream write (so with
// end-to-end encryption one datagram is one record); datagram_reader yields them back.
// Thread-safety: one executor, like the stream.
#pragma once

#include <utility>

#include <optional>
#include <span>

#include "proto/datagram.hpp"
#include "transport/session.hpp"

namespace nl::transport {

// A buffer holding the framed datagram, with spare room for in-place e2e sealing.
bytes frame_datagram(std::span<const std::byte> payload);

awaitable<error_code> write_datagram(stream& s, std::span<const std::byte> payload);

class datagram_reader {
public:
  explicit datagram_reader(stream& s) : s_(s) {}
  // The next datagram; nullopt at the end of the flow (EOF); an error when the stream was
  // reset or carried a malformed length (the stream is then reset with errc::protocol).
  awaitable<result<std::optional<bytes>>> next();

private:
  stream& s_;
  bytes buf_;  // received bytes not yet returned
};

}  // namespace nl::transport
