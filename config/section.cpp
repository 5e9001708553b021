// Key tables and the unknown-key advice of the YAML walker (config/section.hpp).
#include "config/section.hpp"

namespace nl::config::detail {

// ---------------------------------------------------------------------------------------
// Key tables. Top-level keys of each program, and the keys of each nested map.
const keys session_keys{"keepalive", "keepalive_timeout", "window", "max_streams"};
const keys server_tls_keys{"cert", "key"};
const keys client_tls_keys{"ca", "insecure", "server_name"};
const keys socks_keys{"listen", "user", "pass", "early_reply"};
const keys policy_keys{"default", "rules"};
const keys condition_keys{"cidr", "domain", "ports", "protocol", "days", "hours", "tz", "clients"};
const keys udp_keys{"idle_timeout", "max_flows"};
const keys agent_e2e_keys{"key_file", "passphrase_file", "require"};
const keys client_e2e_keys{"pins", "passphrase_file"};
const keys gateway_keys{"listen",          "tls",       "secret_file",         "revoked",
                        "revoked_file",    "session",   "drain_timeout",       "duplicate_agent",
                        "log_level",       "quic",      "max_client_sessions", "max_pending_connections",
                        "max_pending_per_address"};
const keys peer_keys{"gateway",         "token",       "token_file", "tls",      "session",
                     "connect_timeout", "backoff_initial", "backoff_max", "log_level", "transport",
                     "quic_reprobe"};
const keys agent_only_keys{"dial_timeout", "policy", "e2e", "udp"};
const keys client_only_keys{"agent", "socks", "forwards", "e2e", "udp", "udp_forwards"};

keys concat(const keys& a, const keys& b) {
  keys out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

bool has(const keys& k, std::string_view key) {
  return std::find(k.begin(), k.end(), key) != k.end();
}

std::string join(const keys& k) {
  std::string out;
  for (auto s : k) {
    if (!out.empty()) {
      out += ", ";
    }
    out += s;
  }
  return out;
}

std::string unknown_key_message(const context& ctx, std::string_view key, std::string_view path,
                                const keys& known) {
  std::string msg = "unknown key '" + std::string(key) + "'";
  // Inside a flow map, "ports: 22,80" splits at the comma and leaves "80" as a key.
  if (!key.empty() && key.front() >= '0' && key.front() <= '9') {
    return msg + "; inside { } a comma separates entries: quote lists, e.g. ports: \"22,80-443\"";
  }
  std::string_view best;
  std::size_t best_d = std::max<std::size_t>(2, key.size() / 3) + 1;
  for (auto k : known) {
    auto d = edit_distance(key, k);
    if (d < best_d) {
      best = k;
      best_d = d;
    }
  }
  if (!best.empty()) {
    return msg + "; did you mean '" + std::string(best) + "'?";
  }
  // At the top level, say where a misplaced key belongs: under a nested map, or in
  // another program's file.
  if (path.empty()) {
    const std::pair<std::string_view, const keys*> nested[] = {
        {"session", &session_keys},
        {"tls", ctx.program == "gateway" ? &server_tls_keys : &client_tls_keys},
        {"socks", &socks_keys},
        {"policy", &policy_keys},
        {"udp", &udp_keys},
        {"e2e", ctx.program == "agent" ? &agent_e2e_keys : &client_e2e_keys}};
    for (auto [name, sub] : nested) {
      if (has(*sub, key) && has(known, name)) {
        return msg + "; it belongs under '" + std::string(name) + ":', e.g. " + std::string(name) +
               ": { " + std::string(key) + ": ... }";
      }
    }
    const std::pair<std::string_view, keys> programs[] = {
        {"gateway", gateway_keys},
        {"agent", concat(peer_keys, agent_only_keys)},
        {"client", concat(peer_keys, client_only_keys)}};
    for (const auto& [prog, prog_keys] : programs) {
      if (prog != ctx.program && has(prog_keys, key)) {
        return msg + "; '" + std::string(key) + "' is a setting of nl-" + std::string(prog) +
               ", not nl-" + std::string(ctx.program) + ": remove it from this file";
      }
    }
  }
  return msg + "; the keys allowed here are: " + join(known);
}

}  // namespace nl::config::detail
