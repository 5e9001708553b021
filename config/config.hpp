// Validated configuration for the three programs. Loaders read YAML (yaml-cpp), reject
// unknown keys, wrong types, duplicate keys and out-of-range values with
// `file:line: what is wrong; what to do`, and fill defaults. Command-line overrides are
// applied by the programs after loading, then validate() checks the result (required
// values such as secret_file / gateway / token may come from either place).
// Thread-safety: plain values; functions are reentrant.
//
// File layout: one file per program (nl-gateway.yaml, nl-agent.yaml, nl-client.yaml);
// keys are at the top level and named like the fields below, except where noted
// (tls: {cert, key} / {ca, insecure, server_name}; client socks: {listen, user, pass, early_reply};
// agent policy: {default, rules}; agent e2e: {key_file, passphrase_file, require}; client
// e2e: {pins: {AGENT: KEY}, passphrase_file}; udp: {idle_timeout, max_flows}).
// examples/ holds a sample of each with every key.
// Durations are "250ms", "15s", "2m", "1h", "30d" or a plain number of seconds; sizes
// "512KiB", "1MiB" or a plain number of bytes. load_*() resolves relative file paths in
// the config (secret_file, revoked_file, tls files, token_file, e2e key_file and
// passphrase_file) against the directory of the config file; parse_*() leaves them as
// written (so without a config file they stay relative to the working directory).
// Policy rules take the keys of acl/policy.hpp (cidr, domain, ports, protocol, days,
// hours, tz, clients); a rule with days/hours but no tz is judged in UTC.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acl/policy.hpp"

namespace nl::config {

using std::chrono::milliseconds;

struct config_error {
  std::string file;     // path as given, or "<command line>"
  int line = 0;         // 1-based; 0 when unknown (e.g. file missing)
  std::string message;  // what is wrong; what to do
  std::string to_string() const;  // "file:line: message" (or "file: message" when line==0)
};

// Session tuning shared by agent, client and gateway.
struct session_config {
  milliseconds keepalive{10'000};          // send a PING after this much silence
  milliseconds keepalive_timeout{30'000};  // declare the peer dead after this much silence
  std::uint32_t window = 2 * 1024 * 1024;  // per-stream receive window, bytes (16 KiB..16 MiB)
  std::uint32_t max_streams = 4096;        // concurrent streams per session
};

struct tls_server_config {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
};

struct gateway_config {
  std::string source;                     // file the config came from ("" = defaults only)
  std::string listen = "0.0.0.0:443";     // host:port for HTTPS/WSS (or HTTP/WS when plain)
  std::optional<tls_server_config> tls;   // absent => plain (behind a TLS-terminating proxy)
  std::string secret_file;                // token signing secret (required to run)
  std::vector<std::string> revoked;       // token ids (jti) or "tenant/name" refused at once
  std::string revoked_file;               // optional file, one entry per line; reloaded on SIGHUP
  session_config session;
  milliseconds drain_timeout{10'000};     // on SIGTERM: how long streams may drain
  std::string duplicate_agent = "replace";  // "replace" (newest wins) or "refuse"
  std::uint32_t max_client_sessions = 128;  // sessions one client (tenant/name) may hold at once
  std::uint32_t max_pending_connections = 1024;  // TCP connections not yet a session, at once
                                                 // (and, apart, unfinished QUIC handshakes)
  std::uint32_t max_pending_per_address = 64;    // of those, from one address (IPv6: /64); 0 = any
  std::string log_level = "info";
  bool quic = true;                       // also listen on UDP (same host:port) for QUIC; needs tls
};

struct tls_client_config {
  std::string ca_file;      // PEM bundle to trust instead of the system store ("" = system)
  bool insecure = false;    // skip certificate verification (demo / testing only)
  std::string server_name;  // SNI and name to verify; "" = host from the gateway URL
};

// What agents and clients share: where the gateway is and who we are.
struct peer_config {
  std::string gateway;      // ws://host:port[/prefix] or wss://host:port[/prefix]
  std::string token;        // inline token, or
  std::string token_file;   // file holding the token (first line)
  tls_client_config tls;
  session_config session;
  milliseconds connect_timeout{10'000};    // TCP+TLS+WS handshake to the gateway
  milliseconds backoff_initial{500};       // first reconnect delay
  milliseconds backoff_max{30'000};        // cap for the exponential backoff
  std::string log_level = "info";
  // "auto" (QUIC first with a short deadline, else WebSocket; QUIC re-probed while on
  // WebSocket), "quic" or "ws". QUIC needs a wss:// gateway (TLS).
  std::string transport = "auto";
  milliseconds quic_reprobe{300'000};      // auto on WebSocket: how often to try QUIC again
};

// UDP flows (agent: per client session; client: its own).
struct udp_config {
  milliseconds idle_timeout{60'000};   // a UDP flow with no datagram either way for this long is closed
  std::uint32_t max_flows = 256;       // concurrent UDP flows: agent = all clients together; client = per front end (-U port, SOCKS association)
};

// End-to-end encryption between client and agent (e2e/).
struct agent_e2e_config {
  std::string key_file = "nl-agent.key";  // X25519 key pair, created on first start (0600); relative => config dir (cwd without a config)
  std::string passphrase_file;            // optional pre-shared passphrase (first line) mixed into e2e
  bool require = false;                   // refuse every stream that is not end-to-end encrypted
};
struct client_e2e_config {
  std::map<std::string, std::string> pins;  // agent name -> "nl1:..." public key text (as printed by `nl-agent key`)
  std::string passphrase_file;              // optional; must match the agent's
};

// True for an agent public key as text: "nl1:" + 43 characters of unpadded base64url that
// decode to 32 bytes (the last character carries 2 zero bits). The config checks pins
// with it; e2e/ owns the key format itself.
bool valid_public_key_text(std::string_view text);

struct agent_config {
  std::string source;
  peer_config peer;
  milliseconds dial_timeout{10'000};       // connecting to a target inside the network
  acl::policy policy;                      // default-deny unless the config says otherwise
  agent_e2e_config e2e;
  udp_config udp;
};

struct forward_spec {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;                  // 0 = pick a free port (printed at start)
  std::string host;                        // target host as the agent sees it
  std::uint16_t host_port = 0;
  std::string to_string() const;
};
// Parses ssh-like "[bind:]port:host:hostport" (IPv6 in brackets). nullopt when malformed.
// bind defaults to 127.0.0.1; "*" means 0.0.0.0 (all interfaces); port 0 picks a free one.
std::optional<forward_spec> parse_forward(std::string_view s);

// The gateway URL of agents and clients: ws://host[:port][/prefix] or wss://...
struct gateway_url {
  bool tls = true;          // wss (true) or ws (false)
  std::string host;         // name or IP literal, IPv6 without brackets
  std::uint16_t port = 443; // default 443 for wss, 80 for ws
  std::string prefix;       // "" or "/prefix" (no trailing '/'); endpoints are prefix + "/v1/..."
  std::string to_string() const;
};
// nullopt when the scheme is not ws/wss, the host is missing or invalid, the port is not
// 1..65535, or the URL has user info, a query or a fragment.
std::optional<gateway_url> parse_gateway_url(std::string_view s);

struct client_config {
  std::string source;
  peer_config peer;
  std::string agent;                       // default agent name for connect/forward/socks
  std::string socks_listen = "127.0.0.1:1080";
  std::string socks_user;                  // optional SOCKS5 username/password (RFC 1929);
  std::string socks_pass;                  //   also accepted as HTTP Proxy-Authorization Basic
  // Answer CONNECT (SOCKS5 and HTTP) before the agent has connected, so the application's
  // first bytes travel with the OPEN; a refused connect then just closes the connection.
  bool socks_early_reply = false;
  std::vector<forward_spec> forwards;
  client_e2e_config e2e;
  udp_config udp;
  std::vector<forward_spec> udp_forwards;  // `nl-client forward` UDP ports, same syntax as forwards
};

// Levels accepted for log_level (as common/log.hpp): trace, debug, info, warn, error, off.
bool valid_log_level(std::string_view level);

// Locates the config file: explicit path if given (must exist), else ./nl-<program>.yaml,
// $XDG_CONFIG_HOME/nl/nl-<program>.yaml (or ~/.config/nl/...), /etc/nl/nl-<program>.yaml.
// Returns "" when no file is found and none was required.
std::string find_config(std::string_view program, const std::string& explicit_path);

// Load from a file ("" => defaults only). On error returns the first problem found.
std::expected<gateway_config, config_error> load_gateway(const std::string& path);
std::expected<agent_config, config_error> load_agent(const std::string& path);
std::expected<client_config, config_error> load_client(const std::string& path);
// Same, from YAML text (for tests); `name` is used as the file name in errors.
std::expected<gateway_config, config_error> parse_gateway(std::string_view yaml, const std::string& name);
std::expected<agent_config, config_error> parse_agent(std::string_view yaml, const std::string& name);
std::expected<client_config, config_error> parse_client(std::string_view yaml, const std::string& name);

// Semantic checks after command-line overrides (e.g. gateway URL scheme, secret present).
// The error's file is c.source (or "<command line>" without a file) and its line 0: a
// value that came from the file was already checked, with its line, by load/parse.
std::optional<config_error> validate(const gateway_config& c);
std::optional<config_error> validate(const agent_config& c);
std::optional<config_error> validate(const client_config& c);

// Reads the token: `token` when set (it wins over token_file), else the first non-empty
// line of token_file, trimmed. Errors name the file (config_error::file = token_file).
// Checking the file's permissions is the caller's business.
std::expected<std::string, config_error> read_token(const peer_config& p);

}  // namespace nl::config
