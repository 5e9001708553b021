// Internal to transport/quic: what quic_connection.cpp, quic_streams.cpp and
// quic_events.cpp share — the per-stream state, the clock ngtcp2 runs on (the listener in
// quic_session.cpp stamps its Retry tokens with it too) and the table of ngtcp2 callbacks.
// Nothing outside transport/quic includes this.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/chunk_queue.hpp"
#include "transport/quic/quic_connection.hpp"

namespace nl::transport::quic::detail {

inline ngtcp2_tstamp now_ts() {
  return static_cast<ngtcp2_tstamp>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// A stream error code from the wire: ours are 1..63, anything else is "aborted".
inline errc errc_from_wire(std::uint64_t code) {
  if (code >= 1 && code <= 63) {
    return static_cast<errc>(code);
  }
  return errc::aborted;
}

// Bytes our control stream may hold (unsent or unacknowledged) and still take a RESET's text.
// Beyond it the text is left out and the code alone goes (RESET_STREAM): a peer that makes
// us reset its streams over and over but does not read the control stream must not make it
// grow without bound.
inline constexpr std::uint64_t max_control_backlog = 256 * 1024;

// The callbacks a client (server = false) or server connection gives ngtcp2 (quic_events.cpp).
ngtcp2_callbacks make_callbacks(bool server);

// ---------------------------------------------------------------------------------------
// Per-stream state and the application's handles
// ---------------------------------------------------------------------------------------

struct stream_state {
  stream_state(std::int64_t i, const asio::any_io_executor& ex) : id(i), ev(ex) {}
  enum class phase : std::uint8_t {
    want_open,    // acceptor: waiting for the OPEN frame
    pending,      // acceptor: OPEN queued for the application
    want_result,  // opener: waiting for OPEN_RESULT
    open,         // raw bytes both ways
  };
  std::int64_t id;
  bool control = false;
  phase ph = phase::open;
  // receive
  std::vector<std::byte> head;  // the first frame, while it arrives in pieces
  chunk_queue rx;
  bool rx_fin = false;
  // send: bytes are kept until acknowledged (ngtcp2 retransmits from them)
  chunk_queue tx;
  std::uint64_t tx_base = 0;  // stream offset of tx.front()
  std::uint64_t tx_sent = 0;  // handed to ngtcp2
  std::uint64_t tx_end = 0;   // written by the application (and our frames)
  bool fin_wanted = false;
  bool fin_sent = false;
  bool fc_blocked = false;    // waiting for the peer's MAX_STREAM_DATA
  bool queued = false;        // in send_q_
  // end
  bool reset = false;
  bool closed = false;        // ngtcp2 closed it
  error_code error;
  std::string message;
  std::vector<std::byte> envelope;  // opener: the acceptor's end-to-end answer
  std::unique_ptr<watchdog> answer_wd;  // opener: how long the answer may take
  async_event ev;

  bool has_output() const { return tx_sent < tx_end || (fin_wanted && !fin_sent); }
};

}  // namespace nl::transport::quic::detail
