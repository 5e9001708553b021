// Moving bytes between a stream and a TCP socket (agent: stream <-> target; client:
// local connection <-> stream) and between two streams (gateway). Both directions run at
// once; EOF becomes a half-close on the other side; an error on either side aborts both
// (a stream reset carries the reason). Reads from sockets wait for readiness before taking
// a 64 KiB buffer, so an idle relay holds no data buffer at all.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <cstdint>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "transport/session.hpp"

namespace nl::transport {

// A full chunk with its mux header (and an end-to-end record's overhead when sealed) fits
// one WebSocket frame (ws::frame_payload, checked in ws_channel.hpp), i.e. four TLS
// records. A 64 KiB chunk spilled 28 bytes into a second frame and a fifth record: a send,
// a record to open and a short read more per chunk at every hop (bulk +12 to +21 % without
// them, docs/performance.md).
inline constexpr std::size_t relay_chunk = 64 * 1024 - 64;
// A socket read starts with a small buffer and switches to relay_chunk once a read fills
// it (bulk), back when reads are small again: interactive and idle streams then never
// take (and fragment the heap with) 64 KiB buffers for a few bytes.
inline constexpr std::size_t relay_small_chunk = 4 * 1024;
// Spare room the relay leaves around each chunk it reads, so that an end-to-end stream can
// seal the chunk in place (record header before, tag after: e2e::record_overhead).
inline constexpr std::size_t relay_headroom = 16;
inline constexpr std::size_t relay_tailroom = 16;

struct relay_stats {
  std::uint64_t to_stream = 0;    // bytes read from the socket / first stream
  std::uint64_t from_stream = 0;  // bytes written to the socket / first stream
  error_code error;               // first failure, if any (peer reset, socket error)
  std::string detail;             // the peer's reset text, if any
};

awaitable<relay_stats> relay(stream& s, boost::asio::ip::tcp::socket& sock);

// a <-> b. to_stream counts a->b, from_stream counts b->a.
awaitable<relay_stats> splice(stream& a, stream& b);

// The gateway's splice: `a` is an incoming stream not answered yet, `b` the stream opened for
// it with open_early(). a's early data goes on to b at once; b's answer becomes a's answer
// when it comes (refused: `refused` is set and the error is b's code), and only then do
// bytes flow from b to a. Counters as in splice().
struct answered_relay_stats : relay_stats {
  bool refused = false;
};
awaitable<answered_relay_stats> splice_answering(deferred_stream& a, opening_stream& b);

}  // namespace nl::transport
