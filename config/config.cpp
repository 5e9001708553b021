// YAML -> validated structs. yaml-cpp 0.7 gives no line for a missing key and keeps both
// entries of a duplicated key, so every map is walked once by `section`, which records
// the line of each key, refuses duplicates and unknown keys, and then hands out typed
// values. Semantic checks (ranges, URL, cross-field rules) are written once, as check_*
// functions that name the offending keys; parse_* turns a finding into the key's line,
// validate() into "<file>: message" after command-line overrides.
#include <algorithm>
#include <filesystem>
#include <map>

#include <yaml-cpp/yaml.h>

#include "common/units.hpp"
#include "config/config.hpp"
#include "config/detail.hpp"

namespace nl::config {
namespace {

namespace fs = std::filesystem;
using keys = std::vector<std::string_view>;

constexpr std::size_t max_config_bytes = 1024 * 1024;
constexpr std::uint32_t min_window = 16 * 1024;
constexpr std::uint32_t max_window = 16 * 1024 * 1024;
constexpr std::uint32_t max_max_streams = 1 << 20;

// ---------------------------------------------------------------------------------------
// Key tables. Top-level keys of each program, and the keys of each nested map.
const keys session_keys{"keepalive", "keepalive_timeout", "window", "max_streams"};
const keys server_tls_keys{"cert", "key"};
const keys client_tls_keys{"ca", "insecure", "server_name"};
const keys socks_keys{"listen", "user", "pass"};
const keys policy_keys{"default", "rules"};
const keys condition_keys{"cidr", "domain", "ports", "protocol", "days", "hours", "tz", "clients"};
const keys udp_keys{"idle_timeout", "max_flows"};
const keys agent_e2e_keys{"key_file", "passphrase_file", "require"};
const keys client_e2e_keys{"pins", "passphrase_file"};
const keys gateway_keys{"listen",  "tls",           "secret_file",     "revoked",  "revoked_file",
                        "session", "drain_timeout", "duplicate_agent", "log_level", "quic"};
const keys peer_keys{"gateway",         "token",       "token_file", "tls",      "session",
                     "connect_timeout", "backoff_initial", "backoff_max", "log_level", "transport",
                     "quic_reprobe"};
const keys agent_only_keys{"dial_timeout", "policy", "e2e", "udp"};
const keys client_only_keys{"agent", "socks", "forwards", "e2e", "udp", "udp_forwards"};
constexpr std::uint32_t max_max_flows = 1 << 16;

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

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1);
  std::vector<std::size_t> cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string format_size(std::uint64_t n) {
  if (n != 0 && n % (1024 * 1024) == 0) {
    return std::to_string(n / (1024 * 1024)) + "MiB";
  }
  if (n != 0 && n % 1024 == 0) {
    return std::to_string(n / 1024) + "KiB";
  }
  return std::to_string(n) + " bytes";
}

// ---------------------------------------------------------------------------------------
// Thrown inside this file only and caught by parse_*(): the walk is deep and stops at the
// first problem, and this keeps the early exit out of every helper's signature.
struct stop {
  config_error error;
};

struct context {
  std::string file;
  std::string_view program;
  std::map<std::string, int, std::less<>> lines;  // "session.window" -> 1-based line

  [[noreturn]] void fail(int line, std::string message) const {
    throw stop{config_error{file, line, std::move(message)}};
  }

  // Line of the first of `paths` given in the file; else of the nearest enclosing map
  // that was given (a missing key has no line of its own); else 0.
  int line_of(const std::vector<std::string>& paths) const {
    for (const auto& p : paths) {
      if (auto it = lines.find(p); it != lines.end()) {
        return it->second;
      }
    }
    for (const auto& p : paths) {
      std::string_view parent = p;
      while (true) {
        auto dot = parent.rfind('.');
        if (dot == std::string_view::npos) {
          break;
        }
        parent = parent.substr(0, dot);
        if (auto it = lines.find(parent); it != lines.end()) {
          return it->second;
        }
      }
    }
    return 0;
  }
};

int line_of(const YAML::Node& n) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
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

// One YAML map, walked once: duplicate and unknown keys are refused up front, and the
// line of every key is recorded in the context under its dotted path.
class section {
public:
  // `path` is the dotted path of this map ("" at the top); `line` where it was introduced.
  section(context& ctx, const YAML::Node& node, std::string path, int line, const keys& known)
      : ctx_(ctx), path_(std::move(path)), line_(line) {
    if (node.IsNull()) {
      return;  // "session:" with every entry commented out: all defaults
    }
    if (!node.IsMap()) {
      if (path_.empty()) {
        ctx_.fail(line_of(node),
                  "the config must be a map of 'key: value' lines, e.g. 'log_level: info'; "
                  "see examples/nl-" + std::string(ctx_.program) + ".yaml");
      }
      ctx_.fail(line_, "'" + name() + "' must be a map of keys (" + join(known) + "), e.g. " +
                           name() + ": { " + std::string(known.front()) + ": ... }");
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      YAML::Node k = it->first;  // copies: the iterator hands out a temporary
      int kline = line_of(k);
      if (!k.IsScalar()) {
        ctx_.fail(kline, "a key must be a plain word (one of: " + join(known) + ")");
      }
      const std::string& key = k.Scalar();
      if (auto prev = find(key)) {
        ctx_.fail(kline, "duplicate key '" + key + "' (first given at line " + std::to_string(prev->line) +
                             "); keep only one of them");
      }
      if (!has(known, key)) {
        ctx_.fail(kline, unknown_key_message(ctx_, key, path_, known));
      }
      entries_.push_back({key, YAML::Node(it->second), kline});
      ctx_.lines[dotted(key)] = kline;
    }
  }

  struct entry {
    std::string key;
    YAML::Node value;
    int line = 0;
  };

  const entry* find(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) {
        return &e;
      }
    }
    return nullptr;
  }
  int line() const { return line_; }
  context& ctx() const { return ctx_; }

  // The value of a key, as scalar text; nullopt when the key is absent.
  std::optional<std::string> scalar(std::string_view key, std::string_view example) const {
    auto e = find(key);
    if (e == nullptr) {
      return std::nullopt;
    }
    if (e->value.IsNull()) {
      ctx_.fail(e->line, "'" + e->key + "' has no value; write e.g. " + e->key + ": " +
                             std::string(example) + ", or delete the line for the default");
    }
    if (!e->value.IsScalar()) {
      ctx_.fail(e->line, "'" + e->key + "' must be a single value like " + std::string(example) +
                             ", not a list or map");
    }
    return e->value.Scalar();
  }

  void get(std::string_view key, std::string& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      out = *v;
    }
  }

  void get_duration(std::string_view key, std::chrono::milliseconds& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      auto d = parse_duration(*v);
      if (!d) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a duration like " +
                                       std::string(example) +
                                       " (units ms, s, m, h, d; a plain number means seconds), not '" +
                                       *v + "'");
      }
      out = *d;
    }
  }

  void get_size(std::string_view key, std::uint32_t& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      auto n = parse_size(*v);
      if (!n || *n > 0xffffffffu) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a size like " + std::string(example) +
                                       " (units KiB, MiB; a plain number means bytes), not '" + *v + "'");
      }
      out = static_cast<std::uint32_t>(*n);
    }
  }

  void get_count(std::string_view key, std::uint32_t& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      bool digits = !v->empty() && v->size() <= 9 &&
                    std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a whole number like " +
                                       std::string(example) + ", not '" + *v + "'");
      }
      out = static_cast<std::uint32_t>(std::stoul(*v));
    }
  }

  void get_bool(std::string_view key, bool& out) const {
    if (auto v = scalar(key, "false")) {
      std::string l = *v;
      std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
      if (l == "true" || l == "yes" || l == "on") {
        out = true;
      } else if (l == "false" || l == "no" || l == "off") {
        out = false;
      } else {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be true or false, not '" + *v + "'");
      }
    }
  }

  // A list of scalars; a single scalar counts as a list of one; empty when absent or
  // null. Each item comes with its own line.
  std::vector<std::pair<std::string, int>> get_list(std::string_view key, std::string_view example) const {
    std::vector<std::pair<std::string, int>> out;
    auto e = find(key);
    if (e == nullptr || e->value.IsNull()) {
      return out;
    }
    if (e->value.IsScalar()) {
      out.emplace_back(e->value.Scalar(), e->line);
      return out;
    }
    if (!e->value.IsSequence()) {
      ctx_.fail(e->line, "'" + e->key + "' must be a list like " + std::string(example));
    }
    for (const auto& item : e->value) {
      int l = line_of(item);
      if (!item.IsScalar()) {
        ctx_.fail(l ? l : e->line, "each entry of '" + e->key + "' must be a single value, as in " +
                                       std::string(example));
      }
      out.emplace_back(item.Scalar(), l ? l : e->line);
    }
    return out;
  }

  // A nested map; nullopt when absent.
  std::optional<section> sub(std::string_view key, const keys& known) const {
    auto e = find(key);
    if (e == nullptr) {
      return std::nullopt;
    }
    return section(ctx_, e->value, dotted(key), e->line, known);
  }

private:
  std::string dotted(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  std::string name() const {
    auto dot = path_.rfind('.');
    return dot == std::string::npos ? path_ : path_.substr(dot + 1);
  }

  context& ctx_;
  std::string path_;
  int line_ = 0;
  std::vector<entry> entries_;
};

// ---------------------------------------------------------------------------------------
// Semantic checks, shared by parse_* (with lines) and validate() (after CLI overrides).
struct issue {
  std::vector<std::string> keys;  // dotted paths, most specific first
  std::string message;
};
using finding = std::optional<issue>;

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
  for (const auto& r : c.revoked) {
    if (r.empty()) {
      return issue{{"revoked"}, "'revoked' has an empty entry; list token ids or tenant/name"};
    }
  }
  return check_log_level(c.log_level);
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

void raise(const context& ctx, const finding& f) {
  if (f) {
    ctx.fail(ctx.line_of(f->keys), f->message);
  }
}

std::optional<config_error> to_validation_error(const std::string& source, const finding& f) {
  if (!f) {
    return std::nullopt;
  }
  return config_error{source.empty() ? "<command line>" : source, 0, f->message};
}

// ---------------------------------------------------------------------------------------
// Readers for the parts the programs share.
YAML::Node load_root(const context& ctx, std::string_view yaml) {
  if (auto f = detail::check_yaml_text(yaml)) {
    ctx.fail(f->line, std::move(f->message));
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    std::string hint = "; check the indentation and quoting on this line and the one before";
    if (e.msg.find("anchor") != std::string::npos || e.msg.find("alias") != std::string::npos) {
      hint = "; a value starting with '*' or '&' must be quoted, e.g. \"*.lan\"";
    } else if (e.msg.find("tab") != std::string::npos || detail::tab_indented(yaml, e.mark.line)) {
      hint = "; indent with spaces, not tabs";
    }
    ctx.fail(e.mark.line >= 0 ? e.mark.line + 1 : 0, "YAML syntax error: " + e.msg + hint);
  }
  if (docs.size() > 1) {
    int l = line_of(docs[1]);
    ctx.fail(l, "only one YAML document is allowed; remove the '---' line and merge the documents");
  }
  return docs.empty() ? YAML::Node() : docs.front();
}

void read_session(const section& top, session_config& s) {
  if (auto sec = top.sub("session", session_keys)) {
    sec->get_duration("keepalive", s.keepalive, "10s");
    sec->get_duration("keepalive_timeout", s.keepalive_timeout, "30s");
    sec->get_size("window", s.window, "512KiB");
    sec->get_count("max_streams", s.max_streams, "4096");
  }
}

void read_peer(const section& top, peer_config& p) {
  top.get("gateway", p.gateway, "wss://gw.example.com");
  top.get("token", p.token, "eyJhbGciOi...");
  top.get("token_file", p.token_file, "/etc/nl/agent.token");
  if (top.find("token") && top.find("token_file")) {
    int l = std::max(top.find("token")->line, top.find("token_file")->line);
    top.ctx().fail(l, "set only one of 'token' and 'token_file'; prefer token_file (it keeps the "
                      "secret out of the config)");
  }
  if (auto tls = top.sub("tls", client_tls_keys)) {
    tls->get("ca", p.tls.ca_file, "/etc/nl/ca.pem");
    tls->get_bool("insecure", p.tls.insecure);
    tls->get("server_name", p.tls.server_name, "gw.example.com");
  }
  read_session(top, p.session);
  top.get_duration("connect_timeout", p.connect_timeout, "10s");
  top.get_duration("backoff_initial", p.backoff_initial, "500ms");
  top.get_duration("backoff_max", p.backoff_max, "30s");
  top.get("log_level", p.log_level, "info");
  top.get("transport", p.transport, "auto");
  top.get_duration("quic_reprobe", p.quic_reprobe, "5m");
}

acl::rule read_rule(context& ctx, const YAML::Node& item, int index, int fallback_line) {
  int line = line_of(item);
  if (line == 0) {
    line = fallback_line;
  }
  std::string where = "rule " + std::to_string(index);
  const std::string example = "- deny: { cidr: [10.0.0.0/8] }";
  if (!item.IsMap()) {
    ctx.fail(line, where + " must be a map with one key, allow or deny, e.g. " + example);
  }
  if (item.size() != 1) {
    std::string found;
    for (auto it = item.begin(); it != item.end(); ++it) {
      found += (found.empty() ? "'" : ", '") + (it->first.IsScalar() ? it->first.Scalar() : "?") + "'";
    }
    ctx.fail(line, where + " has several keys (" + found +
                       "); a rule has one key, allow or deny, with its conditions indented under it "
                       "or in braces, e.g. " + example);
  }
  auto it = item.begin();
  YAML::Node k = it->first;  // copies: the iterator hands out a temporary
  YAML::Node body = it->second;
  line = line_of(k) ? line_of(k) : line;
  std::string act = k.IsScalar() ? k.Scalar() : "";
  acl::action action = acl::action::allow;
  if (act == "allow") {
    action = acl::action::allow;
  } else if (act == "deny") {
    action = acl::action::deny;
  } else {
    ctx.fail(line, where + " starts with '" + act + "'; start each rule with allow: or deny:, e.g. " + example);
  }
  if (body.IsNull()) {
    ctx.fail(line, where + " has no conditions; give some, e.g. " + example +
                       ", or write {} to match every target");
  }
  // Line lookups for conditions are not needed later; use a scratch path per rule.
  section conds(ctx, body, "policy.rules." + std::to_string(index), line, condition_keys);
  acl::rule_builder builder(action);
  for (std::string_view key : condition_keys) {
    std::string_view example_value = key == "cidr"     ? "[10.0.0.0/8, \"fd00::/8\"]"
                                     : key == "domain" ? "[\"*.lan\", nas.home]"
                                     : key == "ports"  ? "\"22,80-443\""
                                     : key == "days"   ? "\"mon-fri,sun\""
                                     : key == "hours"  ? "\"08:00-18:00\""
                                     : key == "tz"     ? "Europe/Berlin"
                                     : key == "clients" ? "[alice, \"group:ops\"]"
                                                        : "tcp";
    // The rule text says client=..., the YAML list clients: [...].
    std::string_view builder_key = key == "clients" ? "client" : key;
    if (key == "protocol" || key == "tz") {
      if (auto v = conds.scalar(key, example_value)) {
        if (auto err = builder.add(builder_key, *v); !err.empty()) {
          ctx.fail(conds.find(key)->line, where + ": " + err);
        }
      }
      continue;
    }
    auto items = conds.get_list(key, example_value);
    if (conds.find(key) && items.empty()) {
      ctx.fail(conds.find(key)->line, where + ": '" + std::string(key) + "' is empty; list at least one, e.g. " +
                                          std::string(key) + ": " + std::string(example_value) +
                                          ", or remove it");
    }
    for (const auto& [value, vline] : items) {
      if (auto err = builder.add(builder_key, value); !err.empty()) {
        ctx.fail(vline, where + ": " + err);
      }
    }
  }
  auto r = builder.finish();
  if (!r) {
    ctx.fail(line, where + ": " + r.error());
  }
  r->label = where + " at line " + std::to_string(line) + " (" + acl::describe(*r) + ")";
  return *r;
}

void read_policy(const section& top, acl::policy& p) {
  auto pol = top.sub("policy", policy_keys);
  if (!pol) {
    return;
  }
  context& ctx = top.ctx();
  if (auto d = pol->scalar("default", "deny")) {
    if (*d == "allow") {
      p.default_action = acl::action::allow;
    } else if (*d == "deny") {
      p.default_action = acl::action::deny;
    } else {
      ctx.fail(pol->find("default")->line, "'default' is '" + *d +
                                               "'; use deny (refuse what no rule allows) or allow");
    }
  }
  auto rules = pol->find("rules");
  if (rules == nullptr || rules->value.IsNull()) {
    return;
  }
  if (!rules->value.IsSequence()) {
    ctx.fail(rules->line, "'rules' must be a list of rules, one per line starting with '- ', e.g. "
                          "- deny: { cidr: [10.0.0.0/8] }");
  }
  int index = 0;
  for (const auto& item : rules->value) {
    p.rules.push_back(read_rule(ctx, item, ++index, rules->line));
  }
}

void read_udp(const section& top, udp_config& u) {
  if (auto sec = top.sub("udp", udp_keys)) {
    sec->get_duration("idle_timeout", u.idle_timeout, "60s");
    sec->get_count("max_flows", u.max_flows, "256");
  }
}

void read_forwards(const section& top, std::string_view key, std::vector<forward_spec>& out,
                   std::string_view example) {
  for (auto& [v, l] : top.get_list(key, example)) {
    auto f = parse_forward(v);
    if (!f) {
      top.ctx().fail(l, "'" + v + "' is not a forward; write [bind:]port:host:hostport, e.g. " +
                            (key == "udp_forwards" ? std::string("5353:127.0.0.1:53 or 127.0.0.1:5353:[fd00::53]:53")
                                                   : std::string("8080:intranet.lan:80 or 127.0.0.1:2222:[fd00::5]:22")));
    }
    out.push_back(*f);
  }
}

// e2e.pins: a map of agent name -> key text. Names are free keys, so this walks the map
// itself (like section does) to refuse duplicates and record each entry's line.
void read_pins(const section& e2e, std::map<std::string, std::string>& pins) {
  auto e = e2e.find("pins");
  if (e == nullptr || e->value.IsNull()) {
    return;
  }
  context& ctx = e2e.ctx();
  if (!e->value.IsMap()) {
    ctx.fail(e->line, "'pins' must be a map of agent names to keys, e.g. pins: { home: \"nl1:...\" } "
                      "(one 'NAME: KEY' line each, indented under pins:)");
  }
  std::map<std::string, int> seen;
  for (auto it = e->value.begin(); it != e->value.end(); ++it) {
    YAML::Node k = it->first;  // copies: the iterator hands out a temporary
    YAML::Node v = it->second;
    int kline = line_of(k) ? line_of(k) : e->line;
    if (!k.IsScalar()) {
      ctx.fail(kline, "each pin is 'AGENT: KEY' with the agent's name as the key");
    }
    const std::string& name = k.Scalar();
    if (auto prev = seen.find(name); prev != seen.end()) {
      ctx.fail(kline, "agent '" + name + "' is pinned twice (first at line " + std::to_string(prev->second) +
                          "); keep only one of them");
    }
    seen[name] = kline;
    if (!v.IsScalar()) {
      ctx.fail(kline, "the pin for agent '" + name + "' must be one key like \"nl1:...\" (from `nl-agent key`), "
                      "not a list or map");
    }
    ctx.lines["e2e.pins." + name] = kline;
    pins[name] = v.Scalar();
  }
}

template <class Config, class Fill>
std::expected<Config, config_error> parse_with(std::string_view yaml, const std::string& name,
                                               std::string_view program, Fill&& fill) {
  context ctx{name, program, {}};
  try {
    Config c;
    c.source = name;
    auto root = load_root(ctx, yaml);
    section top(ctx, root, "", 1, program == "gateway" ? gateway_keys
                                   : program == "agent" ? concat(peer_keys, agent_only_keys)
                                                        : concat(peer_keys, client_only_keys));
    fill(top, c);
    return c;
  } catch (const stop& s) {
    return std::unexpected(s.error);
  } catch (const YAML::Exception& e) {
    // Not expected (the walk checks node types first), but a config must never crash us.
    return std::unexpected(config_error{name, e.mark.line >= 0 ? e.mark.line + 1 : 0,
                                        "cannot read this value: " + e.msg + "; compare with the example config"});
  }
}

void fill_gateway(const section& top, gateway_config& c) {
  top.get("listen", c.listen, "0.0.0.0:443");
  if (auto tls = top.sub("tls", server_tls_keys)) {
    if (!top.find("tls")->value.IsNull()) {
      tls_server_config t;
      tls->get("cert", t.cert_file, "/etc/nl/cert.pem");
      tls->get("key", t.key_file, "/etc/nl/key.pem");
      c.tls = t;
    }
  }
  top.get("secret_file", c.secret_file, "/etc/nl/secret");
  for (auto& [v, l] : top.get_list("revoked", "[3f2a9c, acme/old-laptop]")) {
    if (v.empty()) {
      top.ctx().fail(l, "'revoked' has an empty entry; list token ids (jti) or tenant/name");
    }
    c.revoked.push_back(v);
  }
  top.get("revoked_file", c.revoked_file, "/etc/nl/revoked");
  read_session(top, c.session);
  top.get_duration("drain_timeout", c.drain_timeout, "10s");
  top.get("duplicate_agent", c.duplicate_agent, "replace");
  top.get("log_level", c.log_level, "info");
  top.get_bool("quic", c.quic);
  raise(top.ctx(), check_gateway(c, false));
}

void fill_agent(const section& top, agent_config& c) {
  read_peer(top, c.peer);
  top.get_duration("dial_timeout", c.dial_timeout, "10s");
  read_policy(top, c.policy);
  if (auto e2e = top.sub("e2e", agent_e2e_keys)) {
    e2e->get("key_file", c.e2e.key_file, "nl-agent.key");
    e2e->get("passphrase_file", c.e2e.passphrase_file, "/etc/nl/e2e.passphrase");
    e2e->get_bool("require", c.e2e.require);
  }
  read_udp(top, c.udp);
  raise(top.ctx(), check_agent(c, false));
}

void fill_client(const section& top, client_config& c) {
  read_peer(top, c.peer);
  top.get("agent", c.agent, "home");
  if (auto socks = top.sub("socks", socks_keys)) {
    socks->get("listen", c.socks_listen, "127.0.0.1:1080");
    socks->get("user", c.socks_user, "alice");
    socks->get("pass", c.socks_pass, "s3cret");
  }
  read_forwards(top, "forwards", c.forwards, "[\"8080:intranet.lan:80\"]");
  read_forwards(top, "udp_forwards", c.udp_forwards, "[\"5353:127.0.0.1:53\"]");
  if (auto e2e = top.sub("e2e", client_e2e_keys)) {
    read_pins(*e2e, c.e2e.pins);
    e2e->get("passphrase_file", c.e2e.passphrase_file, "e2e.passphrase");
  }
  read_udp(top, c.udp);
  raise(top.ctx(), check_client(c, false));
}

// Relative paths in a config file mean "next to the config file", so a unit started in /
// with -c /etc/nl/nl-agent.yaml finds token_file: agent.token in /etc/nl.
void resolve(const std::string& source, std::string& path) {
  if (path.empty() || path.front() == '/') {
    return;
  }
  auto dir = fs::path(source).parent_path();
  if (!dir.empty()) {
    path = (dir / path).lexically_normal().string();
  }
}

void resolve_peer(const std::string& source, peer_config& p) {
  resolve(source, p.token_file);
  resolve(source, p.tls.ca_file);
}

template <class Config>
std::expected<Config, config_error> load_with(
    const std::string& path, std::expected<Config, config_error> (*parse)(std::string_view, const std::string&)) {
  if (path.empty()) {
    return Config{};
  }
  auto text = detail::read_text_file(path, "config file", max_config_bytes);
  if (!text) {
    auto e = text.error();
    e.message += " (or copy one from examples/ and pass it with -c FILE)";
    return std::unexpected(e);
  }
  return parse(*text, path);
}

}  // namespace

std::expected<gateway_config, config_error> parse_gateway(std::string_view yaml, const std::string& name) {
  return parse_with<gateway_config>(yaml, name, "gateway", fill_gateway);
}

std::expected<agent_config, config_error> parse_agent(std::string_view yaml, const std::string& name) {
  return parse_with<agent_config>(yaml, name, "agent", fill_agent);
}

std::expected<client_config, config_error> parse_client(std::string_view yaml, const std::string& name) {
  return parse_with<client_config>(yaml, name, "client", fill_client);
}

std::expected<gateway_config, config_error> load_gateway(const std::string& path) {
  auto c = load_with<gateway_config>(path, parse_gateway);
  if (c && !path.empty()) {
    resolve(path, c->secret_file);
    resolve(path, c->revoked_file);
    if (c->tls) {
      resolve(path, c->tls->cert_file);
      resolve(path, c->tls->key_file);
    }
  }
  return c;
}

std::expected<agent_config, config_error> load_agent(const std::string& path) {
  auto c = load_with<agent_config>(path, parse_agent);
  if (c && !path.empty()) {
    resolve_peer(path, c->peer);
    resolve(path, c->e2e.key_file);
    resolve(path, c->e2e.passphrase_file);
  }
  return c;
}

std::expected<client_config, config_error> load_client(const std::string& path) {
  auto c = load_with<client_config>(path, parse_client);
  if (c && !path.empty()) {
    resolve_peer(path, c->peer);
    resolve(path, c->e2e.passphrase_file);
  }
  return c;
}

std::optional<config_error> validate(const gateway_config& c) {
  return to_validation_error(c.source, check_gateway(c, true));
}

std::optional<config_error> validate(const agent_config& c) {
  return to_validation_error(c.source, check_agent(c, true));
}

std::optional<config_error> validate(const client_config& c) {
  return to_validation_error(c.source, check_client(c, true));
}

}  // namespace nl::config
