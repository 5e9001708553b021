// The session/stream interface everything above transport/ is written against. A session
// is ONE authenticated connection between a peer (agent or client) and the gateway; it
// carries many streams, each a reliable byte stream with its own flow-control window,
// half-close and reset. The WebSocket mux (transport/mux, transport/ws) implements it
// today; QUIC will implement it with native streams. Code above this layer never learns
// which it has, except through transport_name() for logs.
//
// Data is passed as nl::bytes that are moved, not copied. Backpressure: write() suspends
// while the peer's window for that stream is exhausted; the peer's window grows again
// only when its application has read() the data. So memory is bounded by
// window x streams, whatever the traffic.
//
// Thread-safety: a session and its streams belong to one executor (one thread).
#pragma once

#include <utility>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "proto/frame.hpp"

namespace nl::transport {

using boost::asio::awaitable;

struct open_request {
  proto::target dest;                  // what the far end should connect to (hidden with e2e)
  std::string peer;                    // opener -> gateway: agent name; gateway -> agent: client id
  std::vector<std::byte> envelope;     // end-to-end envelope (opaque to the gateway)
  std::vector<std::string> groups;     // gateway -> agent: the client's groups (from its token)
  std::string policy;                  // gateway -> agent: the client's token policy (JSON) or ""
};

// Built by a plain function: see the note on g++ 12 coroutines in transport/mux/mux_internal.hpp.
inline open_request make_open_request(proto::target dest, std::string peer, std::vector<std::byte> envelope = {}) {
  open_request r;
  r.dest = std::move(dest);
  r.peer = std::move(peer);
  r.envelope = std::move(envelope);
  return r;
}

class stream {
public:
  virtual ~stream() = default;  // destroying an unfinished stream resets it (errc::aborted)

  virtual std::uint32_t id() const noexcept = 0;

  // The next chunk of data. An empty chunk means the peer half-closed (EOF); after it, read()
  // keeps returning empty. An error means the stream was reset (the peer's code, e.g.
  // errc::refused, or errc::session_closed when the session went away).
  virtual awaitable<result<bytes>> read() = 0;

  // Sends all of `data`, suspending while flow control forbids. Error if the stream was
  // reset or the session closed.
  virtual awaitable<error_code> write(bytes data) = 0;

  // No more data from us (half-close). Idempotent; data already written is delivered first.
  // Suspends only while an end marker waits for flow control (end-to-end streams send an
  // authenticated final record, so that a relay cannot truncate the stream unnoticed).
  virtual awaitable<error_code> shutdown_send() = 0;

  // Abort both directions with a code the peer will see. Idempotent.
  virtual void reset(errc code, std::string_view message = {}) = 0;

  // Text that came with the peer's RESET (e.g. which rule denied), for logs and users.
  virtual const std::string& error_message() const noexcept = 0;
};

// The far end's answer to an OPEN.
struct open_answer {
  error_code error;                 // empty = accepted; otherwise why not (errc::refused, ...)
  std::string message;              // the far end's detail text (may be empty)
  std::vector<std::byte> envelope;  // the far end's end-to-end answer (accepted or not)
};

// A stream from session::open_early(), usable before the far end has answered. What is
// written before the answer travels right behind the OPEN ("early data", at most
// proto::early_window bytes; more waits for the answer), so a connection whose first bytes
// come from our side costs one round trip in all, not two. read() waits for the answer; a
// refusal fails read() and write() with its code. Not for end-to-end streams: their keys
// come with the answer.
class opening_stream : public stream {
public:
  // Waits for the far end's answer (at most the timeout given to open_early()).
  virtual awaitable<open_answer> answer() = 0;
};

// An incoming stream taken before it is answered, for a relay that passes a far end's answer
// through (the gateway): read() returns the opener's early data as it arrives; write() waits
// until answer(). Dropping it unanswered rejects it (errc::aborted).
class deferred_stream : public stream {
public:
  virtual void answer(errc code, std::string message, std::vector<std::byte> envelope) = 0;
};

// An OPEN received from the peer that the application has not answered yet.
class incoming_stream {
public:
  virtual ~incoming_stream() = default;  // unanswered => rejected with errc::aborted
  virtual const open_request& request() const noexcept = 0;
  virtual std::uint32_t id() const noexcept = 0;
  // `envelope` is the end-to-end answer carried back in OPEN_RESULT (empty when e2e is off).
  virtual std::unique_ptr<stream> accept(std::vector<std::byte> envelope) = 0;
  virtual void reject(errc code, std::string message, std::vector<std::byte> envelope) = 0;
  // The stream now, answered later through deferred_stream::answer().
  virtual std::unique_ptr<deferred_stream> defer() = 0;
  // Bytes of early data (sent behind the OPEN, before our answer) received so far.
  virtual std::size_t early_bytes() const noexcept = 0;
  std::unique_ptr<stream> accept() { return accept({}); }
  void reject(errc code, std::string message) { reject(code, std::move(message), {}); }
};

struct open_outcome {
  std::unique_ptr<transport::stream> stream;  // set when the far end accepted
  error_code error;                // why not, otherwise
  std::string message;             // the far end's detail text (may be empty)
  std::vector<std::byte> envelope; // the far end's end-to-end answer (accepted or not)

  // An open that failed with `code`, with no stream and no answer from the far end.
  static open_outcome failed(errc code, std::string message) {
    open_outcome out;
    out.error = make_error_code(code);
    out.message = std::move(message);
    return out;
  }
};

struct early_outcome {
  std::unique_ptr<opening_stream> stream;  // set unless the OPEN could not even be sent
  error_code error;                        // why not (session closed or draining, limits)
  std::string message;
};

// How a session ended, for logs and the reconnect policy.
struct close_info {
  bool remote = false;                         // the peer sent GOAWAY / closed first
  proto::goaway_code code = proto::goaway_code::normal;
  std::string message;
};

class session {
public:
  virtual ~session() = default;

  // Opens a stream and waits for the far end's answer (one round trip on a warm session).
  virtual awaitable<open_outcome> open(open_request req,
                                       std::chrono::milliseconds timeout) = 0;

  // Opens a stream without waiting for the answer (see opening_stream). On a session whose
  // peer cannot take early data (an older WebSocket peer), writes wait for the answer.
  virtual awaitable<early_outcome> open_early(open_request req, std::chrono::milliseconds timeout) = 0;

  // The next stream the peer opened; error (errc::session_closed) once the session ended.
  virtual awaitable<result<std::unique_ptr<incoming_stream>>> accept() = 0;

  // Stop taking new streams and tell the peer (GOAWAY); existing streams may finish.
  virtual void drain(proto::goaway_code code, std::string message) = 0;
  // Tell the peer why and close now; every stream fails with errc::session_closed.
  virtual void close(proto::goaway_code code, std::string message) = 0;

  // Completes when the session has ended (connection gone).
  virtual awaitable<void> wait_closed() = 0;

  virtual bool is_open() const noexcept = 0;      // connection up
  virtual bool is_draining() const noexcept = 0;  // either side sent GOAWAY; open() fails
  virtual const close_info& closed_by() const noexcept = 0;
  virtual std::size_t stream_count() const noexcept = 0;
  virtual std::string_view transport_name() const noexcept = 0;  // "ws", "wss", "quic"
  virtual std::string_view remote_address() const noexcept = 0;  // "ip:port" of the peer
  // The identity the gateway authenticated ("tenant/name"), from its HELLO; "" on the gateway.
  virtual const std::string& identity() const noexcept = 0;
};

}  // namespace nl::transport
