// nl over QUIC (prototype): transport::session implemented with ngtcp2 0.12 + GnuTLS, each
// nl stream a native QUIC bidirectional stream, so one lost packet delays only the streams
// whose data it carried. Not yet wired into the apps; docs/quic.md has the status.
//
// Wire design (ALPN "nl/1", QUIC v1, TLS 1.3; frames are proto/frame.hpp frames, reused):
// - Control stream: the client's first bidirectional stream (id 0). The client writes a
//   HELLO frame whose `identity` field carries its bearer token (JWT) and `info` the
//   endpoint it asks for ("/v1/agent" or "/v1/client", as the WebSocket paths); the gateway answers with its own HELLO (identity = "tenant/name" it
//   authenticated) once the application accepted the session, or closes the connection
//   with application code 0x200 + errc (e.g. auth_failed) and the reason as the phrase.
//   Later on the control stream: GOAWAY (drain) and RESET frames carrying the message text
//   of a stream reset (QUIC's RESET_STREAM has a code only). Other frames: protocol error.
// - nl streams: either side opens a QUIC bidi stream and writes an OPEN frame (the frame's
//   stream id = the QUIC stream id, truncated to 32 bits); the acceptor answers with an
//   OPEN_RESULT frame, then both carry raw bytes (the opener's may follow its OPEN at once:
//   early data, kept by the acceptor until it answers); FIN is the QUIC FIN. A reject is an
//   OPEN_RESULT with a code + message followed by FIN and STOP_SENDING. The window fields
//   of OPEN / OPEN_RESULT are informative only: QUIC flow control is the credit.
// - RESET: RESET_STREAM + STOP_SENDING with the nl::errc value (1..63) as the application
//   error code; a non-empty message goes first as a RESET frame on the control stream.
// - Session end: CONNECTION_CLOSE (application) with code 0x100 + proto::goaway_code and the
//   message as the reason phrase; the peer's close_info shows both. Dead peers: QUIC idle
//   timeout (`idle_timeout`), kept from firing on a live but idle session by ngtcp2's
//   keep-alive PINGs every `keepalive`.
// - Backpressure: receive credit (MAX_STREAM_DATA / MAX_DATA) is extended only for bytes the
//   application has read(), so memory per connection is bounded by the connection window;
//   sent bytes are kept until acknowledged, at most `send_buffer` (+ one write) per stream.
//
// Thread-safety: everything belongs to the executor given at creation (one thread).
#pragma once

#include <utility>

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "transport/session.hpp"

namespace nl::transport::quic {

inline constexpr std::string_view alpn = "nl/1";

// Application error codes on the wire (CONNECTION_CLOSE); stream codes are nl::errc values.
inline constexpr std::uint64_t goaway_code_base = 0x100;  // + proto::goaway_code
inline constexpr std::uint64_t refusal_code_base = 0x200;  // + nl::errc, before HELLO

// Settings shared by both ends of a session.
struct quic_options {
  std::chrono::milliseconds idle_timeout{30'000};  // no packet for this long: peer is dead
  std::chrono::milliseconds keepalive{10'000};     // PING after this much quiet (< idle_timeout)
  std::uint64_t stream_window = 1024 * 1024;       // initial receive window per stream, bytes
  std::uint64_t max_stream_window = 4 * 1024 * 1024;  // ngtcp2 may auto-tune up to this, bytes
  std::uint64_t connection_window = 16 * 1024 * 1024;       // initial receive window, all streams
  std::uint64_t max_connection_window = 32 * 1024 * 1024;   // auto-tuning ceiling, bytes
  std::size_t send_buffer = 1024 * 1024;   // unacknowledged bytes per stream before write() waits
  std::uint32_t max_streams = 4096;        // concurrent streams the peer may open
  std::string log_name;                    // "quic client" for logs
};

struct client_options {
  std::string host;                // gateway host name or IP literal
  std::uint16_t port = 0;
  std::string server_name;         // SNI and the name the certificate must match; "" = host
  std::string ca_file;             // PEM trust anchors; "" = the system trust store
  bool insecure = false;           // skip certificate verification (tests, debugging)
  std::string token;               // bearer token, sent in the client's HELLO
  std::string endpoint;            // "/v1/agent" or "/v1/client": the role asked for (HELLO info)
  std::chrono::milliseconds timeout{10'000};  // whole dial: handshake + HELLO
  quic_options quic;
};

struct dial_error {
  errc code = errc::not_connected;  // auth_failed when the gateway refused the token
  std::string message;              // "certificate verification failed for 'x': ..." etc.
};

struct dial_result {
  std::shared_ptr<transport::session> session;
  proto::hello_body hello;  // the gateway's HELLO
};

// Client side: handshake, HELLO with the token, wait for the gateway's HELLO.
awaitable<std::expected<dial_result, dial_error>> connect(boost::asio::any_io_executor ex,
                                                           client_options opts);

// A connection whose handshake finished and whose client sent its HELLO (token), waiting
// for the gateway to authenticate it. Dropping it unanswered refuses it (auth_failed).
class pending_session {
public:
  virtual ~pending_session() = default;
  virtual const std::string& token() const noexcept = 0;
  virtual const std::string& client_info() const noexcept = 0;  // the client's HELLO info
  virtual std::string_view remote_address() const noexcept = 0;
  // Sends our HELLO and returns the session (acceptor side).
  virtual std::shared_ptr<transport::session> accept(proto::hello_body hello) = 0;
  // Closes the connection with refusal_code_base + code and `message` as the reason.
  virtual void reject(errc code, std::string message) = 0;
};

struct listener_options {
  std::string listen;      // host:port (UDP); port 0 picks a free one
  std::string cert_file;   // PEM chain, as for the WebSocket listener
  std::string key_file;
  std::chrono::milliseconds handshake_timeout{10'000};  // handshake + client HELLO + answer
  // Connections still in their handshake (before HELLO) at once; Initial packets that would
  // start more are dropped, so handshakes that never finish hold a bounded amount of memory.
  std::size_t max_pending = 1024;
  // Of those, at most this many from one source address (an IPv6 /64); 0 = no such cap.
  // Sources are proven by Retry first, so a spoofed address holds no place.
  std::size_t max_pending_per_address = 64;
  quic_options quic;
};

// One UDP socket for all connections; packets are demultiplexed by destination CID.
class listener {
public:
  virtual ~listener() = default;  // stops accepting; live sessions keep the socket open
  static std::expected<std::unique_ptr<listener>, std::string> create(boost::asio::any_io_executor ex,
                                                                      listener_options opts);
  // The next connection that completed its handshake and sent HELLO; error once stopped.
  virtual awaitable<result<std::unique_ptr<pending_session>>> accept() = 0;
  virtual void stop() = 0;  // no new connections; existing sessions continue
  virtual boost::asio::ip::udp::endpoint local_endpoint() const = 0;
};

}  // namespace nl::transport::quic
