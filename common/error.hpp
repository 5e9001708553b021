// nl's single error category. The numeric values of the stream-level codes (1..63) are
// also the codes carried on the wire in OPEN_RESULT and RESET frames, so a failure seen by
// the agent reaches the client's SOCKS reply unchanged. Values are stable: append only.
// Thread-safety: everything here is immutable after static initialisation.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

namespace nl {

using error_code = boost::system::error_code;

enum class errc : std::uint8_t {
  ok = 0,
  // --- stream outcomes; also wire codes in OPEN_RESULT / RESET ---
  refused = 1,          // the target actively refused the connection (TCP RST)
  net_unreachable = 2,  // no route to the target's network
  host_unreachable = 3, // the target host did not answer (ARP/ICMP host unreachable)
  timeout = 4,          // connecting to the target took longer than connect_timeout
  dns_failure = 5,      // the target name did not resolve
  denied = 6,           // a policy rule (agent or gateway) forbids this target
  no_agent = 7,         // no agent of that name is online for this tenant
  protocol = 8,         // the peer broke the nl protocol (bad frame, window overrun)
  internal = 9,         // a bug or resource failure on the far side
  aborted = 10,         // the far application abandoned the stream (RST, crash, shutdown)
  limit = 11,           // too many streams on the session, or a similar quota
  unsupported = 12,     // a feature (e.g. udp, e2e envelope) the far side lacks
  bad_request = 13,     // malformed target (empty host, port 0)
  e2e_failed = 14,      // end-to-end protection failed: handshake (wrong pinned key or
                        //   passphrase) or a record that was modified, dropped, replayed,
                        //   reordered or truncated on the way
  // --- local / session conditions (never on the wire) ---
  session_closed = 64,  // the session to the gateway ended while the stream was in use
  not_connected = 65,   // no session to the gateway is up (and none came up in time)
  auth_failed = 66,     // the gateway refused our token (HTTP 401/403)
  stream_closed = 67,   // operation on a stream that was already reset or finished
  config = 68,          // invalid configuration
};

const boost::system::error_category& category() noexcept;

inline error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

// The stream code for an error: codes of our category map to themselves, everything else
// (system errors from connect etc.) to the closest wire code.
errc to_wire_code(const error_code& ec) noexcept;

// Short human text for a code ("connection refused by target").
std::string_view describe(errc e) noexcept;

template <class T>
using result = std::expected<T, error_code>;

inline std::unexpected<error_code> fail(errc e) { return std::unexpected(make_error_code(e)); }
inline std::unexpected<error_code> fail(error_code ec) { return std::unexpected(ec); }

}  // namespace nl

namespace boost::system {
template <>
struct is_error_code_enum<nl::errc> : std::true_type {};
}  // namespace boost::system
