// YAML -> validated structs. yaml-cpp 0.7 gives no line for a missing key and keeps both
// entries of a duplicated key, so every map is walked once by `section`
// (config/section.hpp), which records the line of each key, refuses duplicates and unknown
// keys, and then hands out typed values. This file reads each program's keys with it; the
// semantic checks are in config/checks.cpp, written once as check_* functions that name
// the offending keys: parse_* turns a finding into the key's line, validate() into
// "<file>: message" after command-line overrides.
#include <algorithm>
#include <filesystem>
#include <map>

#include <yaml-cpp/yaml.h>

#include "common/units.hpp"
#include "config/config.hpp"
#include "config/detail.hpp"
#include "config/section.hpp"

namespace nl::config {
namespace {

namespace fs = std::filesystem;
using namespace detail;

constexpr std::size_t max_config_bytes = 1024 * 1024;

void raise(const context& ctx, const finding& f) {
  if (f) {
    ctx.fail(ctx.line_of(f->keys), f->message);
  }
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
  top.get_count("max_client_sessions", c.max_client_sessions, "128");
  top.get_count("max_pending_connections", c.max_pending_connections, "1024");
  top.get_count("max_pending_per_address", c.max_pending_per_address, "64");
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
    socks->get_bool("early_reply", c.socks_early_reply);
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

}  // namespace nl::config
