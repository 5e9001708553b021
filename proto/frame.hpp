// The nl multiplexing frame format used inside a WebSocket session (docs/protocol.md is
// the normative description; keep the two in step). Pure encode/decode functions over
// byte spans: no I/O, no allocation beyond the returned values, safe on hostile input.
// A WebSocket binary message carries one or more whole frames; a frame never spans
// messages. All integers are big-endian.
//
//   header (12 bytes): u8 type | u8 flags | u16 reserved(0) | u32 stream_id | u32 length
//   followed by `length` payload bytes.
//
// Thread-safety: pure functions; types are plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace nl::proto {

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::size_t frame_header_size = 12;
// Largest DATA payload a sender may put in one frame; receivers reject larger ones.
inline constexpr std::uint32_t max_data_payload = 256 * 1024;
// Early data (WebSocket sub-protocol nl.2; always on QUIC): what an opener may send on a
// stream before the acceptor's OPEN_RESULT. The acceptor's window in OPEN_RESULT counts it.
inline constexpr std::uint32_t early_window = 32 * 1024;
// Largest non-DATA payload (OPEN carries a host, a peer name and an e2e envelope).
inline constexpr std::uint32_t max_control_payload = 16 * 1024;

enum class frame_type : std::uint8_t {
  hello = 0x01,        // stream 0, gateway -> peer, first frame of a session
  open = 0x02,         // opens stream_id; carries the target and the opener's window
  open_result = 0x03,  // accept (code 0, with the acceptor's window) or refuse
  data = 0x04,         // stream bytes; counts against the receiver's window
  window = 0x05,       // grants the peer more send credit on stream_id
  fin = 0x06,          // sender will send no more data on stream_id (half-close)
  reset = 0x07,        // abort stream_id in both directions, with a code
  ping = 0x08,         // stream 0; peer answers PONG with the same opaque value
  pong = 0x09,         // stream 0
  goaway = 0x0a,       // stream 0; the sender is closing the session, with a reason
};

// 0 (hidden) only in an OPEN whose envelope carries the real destination (end-to-end).
enum class transport_protocol : std::uint8_t { hidden = 0, tcp = 1, udp = 2 };

// Why a session ends (GOAWAY code).
enum class goaway_code : std::uint8_t {
  normal = 0,        // orderly shutdown (SIGTERM, user quit)
  replaced = 1,      // another agent with the same tenant/name took over; do not reconnect
  revoked = 2,       // the token was revoked; do not reconnect
  protocol = 3,      // the peer broke the protocol
  timeout = 4,       // no traffic / pong within the keepalive timeout
  overloaded = 5,    // the gateway sheds load; reconnect later
};
const char* describe(goaway_code c) noexcept;

struct frame_header {
  frame_type type{};
  std::uint8_t flags = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t length = 0;
};

struct target {
  std::string host;  // DNS name or IP literal (IPv6 without brackets); 1..255 bytes
  std::uint16_t port = 0;
  transport_protocol protocol = transport_protocol::tcp;
};

struct hello_body {
  std::uint8_t version = protocol_version;
  std::uint32_t keepalive_ms = 0;   // interval at which the gateway expects traffic
  std::uint32_t max_streams = 0;    // concurrent streams the gateway allows on this session
  std::string identity;             // "tenant/name" the gateway authenticated
  std::string info;                 // free text (gateway version)
};

struct open_body {
  std::uint32_t window = 0;         // opener's receive window for this stream, bytes
  target dest;                      // host may be empty when the envelope carries it (e2e)
  std::string peer;                 // client->gateway: agent name; gateway->agent: client identity
  std::vector<std::byte> envelope;  // opaque end-to-end envelope; empty when e2e is off
  // Set by the gateway towards the agent (the gateway authenticated the client's token):
  std::vector<std::string> groups;  // the client's groups
  std::string policy;               // the client's token policy as JSON ("" = none)
};

struct open_result_body {
  errc code = errc::ok;             // ok, or why the stream was refused
  std::uint32_t window = 0;         // acceptor's receive window (when ok)
  std::string message;              // human detail, e.g. the ACL rule that denied
  std::vector<std::byte> envelope;  // the acceptor's end-to-end answer; empty when e2e is off
};

struct reset_body {
  errc code = errc::aborted;
  std::string message;
};

struct goaway_body {
  goaway_code code = goaway_code::normal;
  std::string message;
};

// Result of looking at the front of a buffer.
enum class parse_status { ok, incomplete, malformed };

struct frame_view {
  frame_header header;
  std::span<const std::byte> payload;
  std::size_t consumed = 0;  // header + payload
};

struct parse_result {
  parse_status status = parse_status::incomplete;
  frame_view frame;
  const char* error = nullptr;  // static text when malformed
};

// Parses the frame at the front of `in`: checks type, reserved bits, stream-0 rules and
// size limits, but not the payload's inner structure (use the decode_* functions).
parse_result parse_frame(std::span<const std::byte> in);

std::optional<hello_body> decode_hello(std::span<const std::byte> p);
std::optional<open_body> decode_open(std::span<const std::byte> p);
std::optional<open_result_body> decode_open_result(std::span<const std::byte> p);
std::optional<std::uint32_t> decode_window(std::span<const std::byte> p);
std::optional<reset_body> decode_reset(std::span<const std::byte> p);
std::optional<std::uint64_t> decode_ping(std::span<const std::byte> p);  // also pong
std::optional<goaway_body> decode_goaway(std::span<const std::byte> p);

// Valid target host: 1..255 bytes, printable ASCII, no spaces, '/', '@' or brackets.
bool valid_host(std::string_view host) noexcept;

// Encoders append a whole frame (header + payload) to `out`.
void encode_header(const frame_header& h, std::span<std::byte, frame_header_size> out) noexcept;
void append_hello(std::vector<std::byte>& out, const hello_body& b);
void append_open(std::vector<std::byte>& out, std::uint32_t id, const open_body& b);
void append_open_result(std::vector<std::byte>& out, std::uint32_t id, const open_result_body& b);
void append_window(std::vector<std::byte>& out, std::uint32_t id, std::uint32_t increment);
void append_fin(std::vector<std::byte>& out, std::uint32_t id);
void append_reset(std::vector<std::byte>& out, std::uint32_t id, const reset_body& b);
void append_ping(std::vector<std::byte>& out, frame_type ping_or_pong, std::uint64_t value);
void append_goaway(std::vector<std::byte>& out, const goaway_body& b);
// Plaintext payloads of the end-to-end handshake (encrypted inside the envelopes):
//   request (client -> agent): u8 version(1) | u8 protocol | u16 port | u8 len + host
//   verdict (agent -> client): u8 code (0 = accepted) | u16 len + message
std::vector<std::byte> encode_e2e_request(const target& t);
std::optional<target> decode_e2e_request(std::span<const std::byte> p);  // a valid, complete target
struct e2e_verdict {
  errc code = errc::ok;
  std::string message;
};
std::vector<std::byte> encode_e2e_verdict(const e2e_verdict& v);
std::optional<e2e_verdict> decode_e2e_verdict(std::span<const std::byte> p);

// DATA frames are sent as a header plus the caller's payload buffer (no copy):
std::array<std::byte, frame_header_size> data_header(std::uint32_t id, std::uint32_t length);

}  // namespace nl::proto
