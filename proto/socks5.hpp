// Server side of SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), as
// spoken by `nl-client socks`: incremental parsers for what a SOCKS client sends
// (greeting, user/pass sub-negotiation, request, UDP ASSOCIATE datagram header) and
// encoders for what the server answers. Every parser looks at the front of a buffer that
// may hold only part of a message and answers ok / incomplete / malformed without
// consuming anything; `consumed` says how much to drop once a message is complete (bytes
// after it, e.g. optimistic data after a CONNECT request, belong to the next stage).
// Pure functions: no I/O, never throw on hostile input.
// Thread-safety: pure functions; types are plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "common/error.hpp"
#include "proto/frame.hpp"

namespace nl::proto::socks5 {

inline constexpr std::uint8_t version = 0x05;
inline constexpr std::uint8_t userpass_version = 0x01;  // RFC 1929 sub-negotiation

// Authentication methods (RFC 1928 §3).
namespace method {
inline constexpr std::uint8_t no_auth = 0x00;
inline constexpr std::uint8_t gssapi = 0x01;
inline constexpr std::uint8_t userpass = 0x02;
inline constexpr std::uint8_t none_acceptable = 0xff;
}  // namespace method

// Reply codes (RFC 1928 §6).
namespace rep {
inline constexpr std::uint8_t succeeded = 0x00;
inline constexpr std::uint8_t general_failure = 0x01;
inline constexpr std::uint8_t not_allowed = 0x02;            // connection not allowed by ruleset
inline constexpr std::uint8_t network_unreachable = 0x03;
inline constexpr std::uint8_t host_unreachable = 0x04;
inline constexpr std::uint8_t connection_refused = 0x05;
inline constexpr std::uint8_t ttl_expired = 0x06;
inline constexpr std::uint8_t command_not_supported = 0x07;
inline constexpr std::uint8_t address_type_not_supported = 0x08;
}  // namespace rep

// Address types (RFC 1928 §4).
namespace atyp {
inline constexpr std::uint8_t ipv4 = 0x01;
inline constexpr std::uint8_t domain = 0x03;
inline constexpr std::uint8_t ipv6 = 0x04;
}  // namespace atyp

enum class command : std::uint8_t { connect = 0x01, bind = 0x02, udp_associate = 0x03 };

// --- client greeting: VER | NMETHODS | METHODS ---
struct greeting_result {
  parse_status status = parse_status::incomplete;
  std::vector<std::uint8_t> methods;  // as offered, in order (when ok)
  std::size_t consumed = 0;
  const char* error = nullptr;        // static text when malformed
};
greeting_result parse_greeting(std::span<const std::byte> in);

// The method the server should pick from `offered`: user/pass when the server requires
// credentials, else "no authentication"; none_acceptable when the client offers neither.
std::uint8_t select_method(std::span<const std::uint8_t> offered, bool userpass_required) noexcept;

// --- RFC 1929: VER(1) | ULEN | UNAME | PLEN | PASSWD ---
// Zero-length fields are accepted (the credential check then fails on its own).
struct userpass_result {
  parse_status status = parse_status::incomplete;
  std::string user;
  std::string pass;
  std::size_t consumed = 0;
  const char* error = nullptr;
};
userpass_result parse_userpass(std::span<const std::byte> in);

// --- request: VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT ---
struct request_result {
  parse_status status = parse_status::incomplete;
  command cmd = command::connect;
  // Host is IPv4 dotted-quad, IPv6 text without brackets, or the domain as sent (which
  // must pass proto::valid_host). Protocol is udp for UDP ASSOCIATE, else tcp. For UDP
  // ASSOCIATE this is the address the client expects to send from (often 0.0.0.0:0).
  target dest;
  std::size_t consumed = 0;
  // When malformed: the reply code to send before closing (general_failure,
  // command_not_supported or address_type_not_supported).
  std::uint8_t reply = rep::general_failure;
  const char* error = nullptr;
};
request_result parse_request(std::span<const std::byte> in);

// --- encoders ---
std::array<std::byte, 2> method_selection(std::uint8_t chosen) noexcept;
std::array<std::byte, 2> userpass_status(bool ok) noexcept;
// VER | REP | RSV | ATYP | BND.ADDR | BND.PORT; the bound address is 0.0.0.0:0 when null.
std::vector<std::byte> reply(std::uint8_t rep, const boost::asio::ip::tcp::endpoint* bound = nullptr);

// SOCKS reply code for the outcome of a stream (see the contract in the design brief).
std::uint8_t reply_code(nl::errc e) noexcept;

// --- UDP ASSOCIATE datagrams (RFC 1928 §7): RSV(2) | FRAG | ATYP | DST.ADDR | DST.PORT | DATA
// A datagram is always whole, so there is no `incomplete`: truncation is malformed.
// Fragmentation is not supported (FRAG != 0 is malformed), as RFC 1928 permits.
struct udp_header_result {
  parse_status status = parse_status::malformed;
  target dest;                      // protocol is always udp
  std::size_t payload_offset = 0;   // DATA starts here
  const char* error = nullptr;
};
udp_header_result parse_udp_header(std::span<const std::byte> datagram);

// Appends a header for `from` (the remote peer a reply datagram came from). An IP literal
// in canonical text form is sent as ATYP 1/4, anything else as a domain. Returns false
// (and appends nothing) when the host cannot be encoded (empty or longer than 255 bytes).
bool append_udp_header(std::vector<std::byte>& out, const target& from);

}  // namespace nl::proto::socks5
