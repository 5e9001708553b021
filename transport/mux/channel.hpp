// A message channel: ordered, reliable, message-preserving, like a WebSocket connection.
// The mux session runs on top of one; ws/ provides the Beast implementation and the unit
// tests an in-memory pair. Thread-safety: one executor; at most one read and one write
// outstanding at a time (the mux guarantees it).
#pragma once

#include <utility>

#include <span>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include "common/error.hpp"

namespace nl::transport {

class message_channel {
public:
  virtual ~message_channel() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  // One whole message; the span stays valid until the next read_message() call.
  virtual boost::asio::awaitable<result<std::span<const std::byte>>> read_message() = 0;
  // Sends the buffers as ONE message.
  virtual boost::asio::awaitable<error_code> write_message(
      std::span<const boost::asio::const_buffer> buffers) = 0;
  // Orderly close if possible (WebSocket close frame), bounded in time by the caller.
  virtual boost::asio::awaitable<void> close_gracefully() = 0;
  // Abort: cancels pending operations, closes the socket. Idempotent.
  virtual void close_now() = 0;
  virtual std::string_view name() const noexcept = 0;            // "ws", "wss"
  virtual std::string_view remote_address() const noexcept = 0;  // "ip:port"
};

}  // namespace nl::transport
