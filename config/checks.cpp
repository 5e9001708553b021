// Semantic checks (ranges, URL, cross-field rules), shared by parse_* (which turns a
// finding into the line of its key) and validate() (after command-line overrides).
#include <algorithm>

#include "common/units.hpp"
#include "config/detail.hpp"

namespace nl::config {
namespace detail {
namespace {

constexpr std::uint32_t min_window = 16 * 1024;
constexpr std::uint32_t max_window = 16 * 1024 * 1024;
constexpr std::uint32_t max_max_streams = 1 << 20;
constexpr std::uint32_t max_client_sessions_limit = 1 << 16;
constexpr std::uint32_t max_pending_connections_limit = 1 << 20;
constexpr std::uint32_t max_max_flows = 1 << 16;

std::string format_size(std::uint64_t n) {
  if (n != 0 && n % (1024 * 1024) == 0) {
    return std::to_string(n / (1024 * 1024)) + "MiB";
  }
  if (n != 0 && n % 1024 == 0) {
    return std::to_string(n / 1024) + "KiB";
  }
  return std::to_string(n) + " bytes";
}

finding check_session(const session_config& s) {
  if (s.keepalive.count() <= 0) {
    return issue{{"session.keepalive"},
                 "'keepalive' must be more than 0; use e.g. 10s (stay well below proxy idle "
                 "timeouts: Cloudflare's is 100s)"};
  }
  if (s.keepalive_timeout <= s.keepalive) {
    return issue{{"session.keepalive_timeout", "session.keepalive"},
                 "'keepalive_timeout' (" + format_duration(s.keepalive_timeout) +
                     ") must be longer than 'keepalive' (" + format_duration(s.keepalive) +
                     "); make it about 3x keepalive, e.g. " + format_duration(s.keepalive * 3)};
  }
  if (s.window < min_window || s.window > max_window) {
    return issue{{"session.window"}, "'window' is " + format_size(s.window) +
                                         ", outside 16KiB..16MiB; pick a size in that range, e.g. 512KiB"};
  }
  if (s.max_streams < 1 || s.max_streams > max_max_streams) {
    return issue{{"session.max_streams"}, "'max_streams' is " + std::to_string(s.max_streams) +
                                              "; pick a number from 1 to 1048576, e.g. 4096"};
  }
  return std::nullopt;
}

// Agent names as tokens spell them (proto/token.hpp's alphabet).
bool proto_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

finding check_udp(const udp_config& u) {
  if (u.idle_timeout.count() <= 0) {
    return issue{{"udp.idle_timeout", "udp"}, "'idle_timeout' must be more than 0; use e.g. 60s"};
  }
  if (u.max_flows < 1 || u.max_flows > max_max_flows) {
    return issue{{"udp.max_flows", "udp"}, "'max_flows' is " + std::to_string(u.max_flows) +
                                               "; pick a number from 1 to 65536, e.g. 256"};
  }
  return std::nullopt;
}

finding check_forwards(const std::vector<forward_spec>& forwards, std::string_view key) {
  for (const auto& f : forwards) {
    if (f.host.empty() || f.host_port == 0) {
      return issue{{std::string(key)}, "forward '" + f.to_string() +
                                           "' has no target; write [bind:]port:host:hostport"};
    }
  }
  return std::nullopt;
}

finding check_log_level(const std::string& level) {
  if (!valid_log_level(level)) {
    return issue{{"log_level"}, "'log_level' is '" + level +
                                    "'; use one of trace, debug, info, warn, error, off"};
  }
  return std::nullopt;
}

finding check_peer(const peer_config& p, bool complete) {
  if (p.gateway.empty()) {
    if (complete) {
      return issue{{"gateway"},
                   "no gateway URL; set 'gateway: wss://gw.example.com' in the config or pass "
                   "--gateway URL"};
    }
  } else if (!parse_gateway_url(p.gateway)) {
    std::string hint;
    if (p.gateway.starts_with("https://") || p.gateway.starts_with("http://")) {
      hint = " (write wss:// for https:// and ws:// for http://)";
    }
    return issue{{"gateway"}, "'gateway' must be a URL starting ws:// or wss://, like "
                              "wss://gw.example.com[:port][/prefix], not '" +
                                  p.gateway + "'" + hint};
  }
  if (complete && p.token.empty() && p.token_file.empty()) {
    return issue{{"token_file", "token"},
                 "no token; set token_file (a file holding the token printed by `nl-gateway token`) "
                 "in the config, or pass --token-file FILE"};
  }
  if (auto f = check_session(p.session)) {
    return f;
  }
  if (p.connect_timeout.count() <= 0) {
    return issue{{"connect_timeout"}, "'connect_timeout' must be more than 0; use e.g. 10s"};
  }
  if (p.backoff_initial.count() <= 0) {
    return issue{{"backoff_initial"}, "'backoff_initial' must be more than 0; use e.g. 500ms"};
  }
  if (p.backoff_initial > p.backoff_max) {
    return issue{{"backoff_initial", "backoff_max"},
                 "'backoff_initial' (" + format_duration(p.backoff_initial) + ") is longer than 'backoff_max' (" +
                     format_duration(p.backoff_max) + "); make backoff_max the larger, e.g. 30s"};
  }
  if (p.transport != "auto" && p.transport != "quic" && p.transport != "ws") {
    return issue{{"transport"}, "'transport' is '" + p.transport + "'; use auto (QUIC, else WebSocket), quic or ws"};
  }
  if (p.quic_reprobe.count() <= 0) {
    return issue{{"quic_reprobe"}, "'quic_reprobe' must be more than 0; use e.g. 5m"};
  }
  if (p.transport == "quic" && p.gateway.starts_with("ws://")) {
    return issue{{"transport", "gateway"}, "'transport: quic' needs a wss:// gateway (QUIC always uses TLS)"};
  }
  return check_log_level(p.log_level);
}

}  // namespace

finding check_gateway(const gateway_config& c, bool complete) {
  if (!parse_host_port(c.listen)) {
    return issue{{"listen"}, "'listen' must be HOST:PORT like 0.0.0.0:443 or [::]:443, not '" +
                                 c.listen + "'"};
  }
  if (c.tls && (c.tls->cert_file.empty() || c.tls->key_file.empty())) {
    return issue{{c.tls->cert_file.empty() ? "tls.cert" : "tls.key", "tls"},
                 std::string("TLS needs both a certificate and a key, but ") +
                     (c.tls->cert_file.empty() ? "'cert'" : "'key'") +
                     " is missing; set tls: { cert: FILE, key: FILE } (or --tls-cert and --tls-key), "
                     "or drop tls and run --plain behind a TLS-terminating proxy"};
  }
  if (complete && c.secret_file.empty()) {
    return issue{{"secret_file"},
                 "no secret_file set; add 'secret_file: /etc/nl/secret' to the config or pass "
                 "--secret-file FILE (create one with `nl-gateway gen-secret --out FILE`)"};
  }
  if (auto f = check_session(c.session)) {
    return f;
  }
  if (c.drain_timeout.count() < 0) {
    return issue{{"drain_timeout"}, "'drain_timeout' must not be negative; use e.g. 10s"};
  }
  if (c.duplicate_agent != "replace" && c.duplicate_agent != "refuse") {
    return issue{{"duplicate_agent"}, "'duplicate_agent' is '" + c.duplicate_agent +
                                          "'; use replace (the newest agent wins) or refuse (the "
                                          "first keeps its name)"};
  }
  if (c.max_client_sessions < 1 || c.max_client_sessions > max_client_sessions_limit) {
    return issue{{"max_client_sessions"}, "'max_client_sessions' is " + std::to_string(c.max_client_sessions) +
                                              "; pick a number from 1 to 65536, e.g. 128"};
  }
  if (c.max_pending_connections < 1 || c.max_pending_connections > max_pending_connections_limit) {
    return issue{{"max_pending_connections"}, "'max_pending_connections' is " +
                                                  std::to_string(c.max_pending_connections) +
                                                  "; pick a number from 1 to 1048576, e.g. 1024"};
  }
  if (c.max_pending_per_address > max_pending_connections_limit) {
    return issue{{"max_pending_per_address"}, "'max_pending_per_address' is " +
                                                  std::to_string(c.max_pending_per_address) +
                                                  "; pick a number from 1 to 1048576, e.g. 64, or 0 for no "
                                                  "per-address cap (behind a proxy or CDN)"};
  }
  for (const auto& r : c.revoked) {
    if (r.empty()) {
      return issue{{"revoked"}, "'revoked' has an empty entry; list token ids or tenant/name"};
    }
  }
  return check_log_level(c.log_level);
}

finding check_agent(const agent_config& c, bool complete) {
  if (auto f = check_peer(c.peer, complete)) {
    return f;
  }
  if (c.dial_timeout.count() <= 0) {
    return issue{{"dial_timeout"}, "'dial_timeout' must be more than 0; use e.g. 10s"};
  }
  if (c.e2e.key_file.empty()) {
    return issue{{"e2e.key_file", "e2e"},
                 "'key_file' is empty; name the file that holds (or will hold) the agent's "
                 "end-to-end key, e.g. key_file: nl-agent.key (created on first start)"};
  }
  return check_udp(c.udp);
}

finding check_client(const client_config& c, bool complete) {
  if (auto f = check_peer(c.peer, complete)) {
    return f;
  }
  if (!parse_host_port(c.socks_listen)) {
    return issue{{"socks.listen"}, "'listen' must be HOST:PORT like 127.0.0.1:1080, not '" +
                                       c.socks_listen + "'"};
  }
  if (c.socks_user.empty() != c.socks_pass.empty()) {
    return issue{{c.socks_user.empty() ? "socks.pass" : "socks.user", "socks"},
                 "SOCKS authentication needs both 'user' and 'pass' (or neither, for no "
                 "authentication); set the missing one"};
  }
  if (auto f = check_forwards(c.forwards, "forwards")) {
    return f;
  }
  if (auto f = check_forwards(c.udp_forwards, "udp_forwards")) {
    return f;
  }
  for (const auto& [agent, key] : c.e2e.pins) {
    std::string path = "e2e.pins." + agent;
    if (!proto_identifier(agent)) {
      return issue{{path, "e2e.pins", "e2e"},
                   "'" + agent + "' under e2e.pins is not an agent name; a pin is 'AGENT: KEY' with the "
                   "agent's name as in its token (1-64 of letters, digits, '.', '_', '-')"};
    }
    if (!valid_public_key_text(key)) {
      return issue{{path, "e2e.pins", "e2e"},
                   "the pin for agent '" + agent + "' is not an agent public key; paste the line "
                   "`nl-agent key` prints on that agent: \"nl1:\" and 43 characters of base64url"};
    }
  }
  return check_udp(c.udp);
}

}  // namespace detail

namespace {

std::optional<config_error> to_validation_error(const std::string& source, const detail::finding& f) {
  if (!f) {
    return std::nullopt;
  }
  return config_error{source.empty() ? "<command line>" : source, 0, f->message};
}

}  // namespace

std::optional<config_error> validate(const gateway_config& c) {
  return to_validation_error(c.source, detail::check_gateway(c, true));
}

std::optional<config_error> validate(const agent_config& c) {
  return to_validation_error(c.source, detail::check_agent(c, true));
}

std::optional<config_error> validate(const client_config& c) {
  return to_validation_error(c.source, detail::check_client(c, true));
}

}  // namespace nl::config
