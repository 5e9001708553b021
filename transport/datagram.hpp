// UDP flows over streams: one stream per flow carrying length-prefixed datagrams
// (proto/datagram.hpp). write_datagram() sends one datagram as one stream write (so with
// end-to-end encryption one datagram is one record); datagram_reader yields them back.
// Thread-safety: one executor, like the stream.
#pragma once

#include <utility>

#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "common/async.hpp"

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

// One UDP flow over a datagram stream, as nl-client's UDP front ends and the TUN capture
// run it: datagrams towards the far side wait in a bounded queue (beyond queue_limit they
// are dropped, as a full socket buffer would drop them), the far side's datagrams go to
// `deliver`, and the flow ends after idle_timeout without a datagram either way.
class datagram_flow {
public:
  explicit datagram_flow(const asio::any_io_executor& ex, std::size_t queue_limit = 256 * 1024)
      : ev_(ex), idle_(ex), queue_limit_(queue_limit) {}

  // Queues a datagram for the far side (also before run()); false if it was dropped.
  bool push(std::span<const std::byte> payload);
  // Ends the flow (idempotent): resets the stream with `code` if one is open.
  void end(errc code, std::string_view why);
  bool ended() const noexcept { return ended_; }

  // Runs the open flow until it ends; returns why it ended: ok for idle expiry or end(),
  // otherwise the stream's error (its message in s.error_message()). on_idle is called
  // when the flow expires.
  awaitable<error_code> run(std::unique_ptr<stream> s, std::function<void(std::span<const std::byte>)> deliver,
                            clock::duration idle_timeout, std::function<void()> on_idle);

private:
  std::deque<bytes> queue_;
  std::size_t queued_ = 0;
  async_event ev_;
  asio::steady_timer idle_;
  std::size_t queue_limit_;
  std::unique_ptr<stream> s_;
  clock::time_point last_ = clock::now();
  bool ended_ = false;
};

}  // namespace nl::transport
