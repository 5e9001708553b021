// nl::transport::mux_session: the session interface implemented over a message channel
// (one WebSocket). Frames (proto/frame.hpp) carry OPEN / OPEN_RESULT / DATA / WINDOW / FIN /
// RESET per stream and HELLO / PING / PONG / GOAWAY for the session. Design notes:
// - One reader coroutine dispatches every incoming frame at once to its stream's queue,
//   so a stream whose application reads slowly never blocks the others; what it may
//   queue is bounded by the window it advertised (a peer that overruns is a protocol error).
// - One writer coroutine sends control frames first (coalesced into one message), then
//   data chunks round-robin: each stream has at most one chunk queued, which keeps the
//   send queue bounded by streams x chunk and interleaves streams fairly.
// - Credit is returned (WINDOW) only when the application has read() the data.
// - A keepalive coroutine sends PING every `keepalive`; silence for `keepalive_timeout`
//   closes the session (dead peer detection).
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <chrono>
#include <memory>
#include <optional>

#include "transport/mux/channel.hpp"
#include "transport/session.hpp"

namespace nl::transport {

// Largest DATA payload by default: a relay chunk sealed end to end (relay_chunk + 20
// bytes) fits, so such a chunk is never split (a copy on each side); and with its 12-byte
// header it fits one WebSocket frame (ws::frame_payload), i.e. four full TLS records.
// Both are checked in ws_channel.hpp.
inline constexpr std::size_t default_max_chunk = 64 * 1024 - 32;

struct mux_options {
  bool initiator = true;                                  // dialed the connection: odd stream ids
  std::chrono::milliseconds keepalive{10'000};            // PING after this long
  std::chrono::milliseconds keepalive_timeout{30'000};    // dead after this much silence
  std::uint32_t window = 2 * 1024 * 1024;                  // our receive window per stream
  // Our receive windows of all streams together: what a peer can make us hold. A stream
  // opened while they are taken gets mux_detail::min_stream_window (so up to that much
  // more per stream), and one that got less than `window` grows back as others finish.
  std::uint64_t session_window = 256 * 1024 * 1024;
  std::uint32_t max_streams = 4096;                       // concurrent streams we accept
  // Largest DATA payload we send (default_max_chunk).
  std::size_t max_chunk = default_max_chunk;
  // Both ends speak nl.2: an opener may send proto::early_window bytes (and FIN) before the
  // acceptor's answer (session::open_early). Off, such data is a protocol error.
  bool early_data = false;
  std::optional<proto::hello_body> hello;                 // acceptor: HELLO to send first
  std::string log_name;                                   // "agent demo/home" for logs
};

// Creates the session and starts its coroutines on the channel's executor.
std::shared_ptr<session> make_mux_session(std::unique_ptr<message_channel> channel,
                                          mux_options opts);

// Initiator side: waits for the peer's HELLO (or failure / timeout). Returns the HELLO.
awaitable<result<proto::hello_body>> wait_hello(session& s, std::chrono::milliseconds timeout);

}  // namespace nl::transport
