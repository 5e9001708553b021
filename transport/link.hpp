// Keeps one session to the gateway up for an agent or a client: dials, and after any loss
// dials again with capped, jittered exponential backoff, forever, except when the gateway
// refused our token (HTTP 401/403), revoked it, or replaced us with a newer session of the
// same name: those end the link with a reason, because retrying cannot help.
//
// Transports: `ws` dials WebSocket, `quic` dials QUIC, `auto` tries QUIC with a short
// deadline and falls back to WebSocket, logging which it uses and why. While an `auto` link
// is on WebSocket it re-probes QUIC every quic_reprobe (a handshake without a token, which
// the gateway answers with a refusal: reachable); when QUIC answers and the session is
// idle (no streams), the session is closed and re-dialled, over QUIC.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/async.hpp"
#include "transport/ws/ws_client.hpp"

namespace nl::transport {

enum class transport_mode { automatic, quic, ws };

using dial_outcome = std::expected<ws::dial_result, ws::dial_error>;

struct link_options {
  ws::dial_options dial;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  transport_mode mode = transport_mode::ws;
  // Dials QUIC within the timeout; `probe` sends no token (reachability only). Set by the
  // apps (transport/quic/link_quic.hpp); without it every mode dials WebSocket.
  std::function<awaitable<dial_outcome>(std::chrono::milliseconds timeout, bool probe)> dial_quic;
  std::chrono::milliseconds quic_deadline{1'500};   // auto: how long QUIC may take before WebSocket
  std::chrono::milliseconds quic_reprobe{300'000};  // auto, on WebSocket: how often to try QUIC again
};

// The link settings of an agent or client: gateway URL (already validated by
// config::validate), TLS trust, session tuning and backoff from its peer_config.
link_options link_options_from(const config::peer_config& p, std::string endpoint, std::string token);

enum class link_end {
  stopped,      // stop() was called
  auth_failed,  // the gateway refused the token
  revoked,      // the gateway revoked the token during the session
  replaced,     // another session with our name took over
};

struct link_result {
  link_end end = link_end::stopped;
  std::string message;
};

class link {
public:
  link(asio::any_io_executor ex, link_options o);

  // Runs the dial/serve/backoff loop until the link ends. `serve` is called for each new
  // session and should return when that session has closed.
  awaitable<link_result> run(std::function<awaitable<void>(std::shared_ptr<session>)> serve);

  // The live session, waiting up to `timeout` for one to come up; null if none did.
  awaitable<std::shared_ptr<session>> get(std::chrono::milliseconds timeout);
  std::shared_ptr<session> current() const;

  void stop();
  // stop(), then wait until the session has flushed and closed (bounded by the mux's
  // close grace period).
  awaitable<void> shutdown();

private:
  awaitable<dial_outcome> dial();
  // auto mode on a WebSocket session: probe QUIC now and then; close the idle session
  // once QUIC answers so that the next dial uses it.
  awaitable<void> reprobe(std::shared_ptr<session> s);

  asio::any_io_executor ex_;
  link_options opts_;
  bool migrating_ = false;  // we closed the session to move it to QUIC
  std::shared_ptr<session> current_;
  async_event changed_;
  asio::steady_timer backoff_timer_;
  bool stopped_ = false;
};

}  // namespace nl::transport
