// nl-gateway: parses the command line and runs the gateway (default), or the
// gen-secret / token helper sub-commands.
#include <utility>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "acl/policy.hpp"
#include "common/fd_limit.hpp"
#include "common/log.hpp"
#include "common/malloc_tuning.hpp"
#include "common/units.hpp"
#include "config/cli.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "proto/token.hpp"

namespace {

namespace token = nl::proto::token;

int config_failure(const nl::config::config_error& e) {
  std::cerr << "nl-gateway: " << e.to_string() << "\n";
  return 2;
}

std::expected<std::vector<std::byte>, std::string> read_secret(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return std::unexpected("cannot read secret_file " + path + ": create one with `nl-gateway gen-secret --out " + path + "`");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto s = token::decode_secret(text);
  if (!s) {
    return std::unexpected(path + ": not a valid secret (expected base64 of at least 32 bytes); create one with `nl-gateway gen-secret`");
  }
  return *s;
}

int gen_secret(const std::string& out) {
  auto text = token::encode_secret(token::generate_secret()) + "\n";
  if (out.empty()) {
    std::cout << text;
    return 0;
  }
  auto old = umask(077);
  std::ofstream f(out, std::ios::trunc);
  umask(old);
  if (!f || !(f << text) || !f.flush()) {
    std::cerr << "nl-gateway: cannot write " << out << "\n";
    return 1;
  }
  chmod(out.c_str(), 0600);
  std::cerr << "wrote a new secret to " << out << " (mode 0600)\n";
  return 0;
}

// The token subcommand's ACL options: groups and a per-client policy ("pol" claim).
struct token_policy_options {
  std::vector<std::string> groups;
  std::vector<std::pair<nl::acl::action, std::string>> rules;  // --allow/--deny, in command-line order
  std::string default_action;                                  // "" | "allow" | "deny"
  std::string policy_json;                                     // --policy JSON (the raw form)

  void add_to(CLI::App& tok) {
    tok.add_option("--group", groups,
                   "a group of the client, for ACL rules naming group:NAME (repeatable)");
    tok.add_option_function<std::string>(
           "--allow", [this](const std::string& s) { rules.emplace_back(nl::acl::action::allow, s); },
           "a rule of the client's own policy, e.g. 'cidr=10.0.0.0/8;ports=22' (repeatable; "
           "keys cidr, domain, ports, protocol, days, hours, tz, client; see docs/acl.md)")
        ->trigger_on_parse();
    tok.add_option_function<std::string>(
           "--deny", [this](const std::string& s) { rules.emplace_back(nl::acl::action::deny, s); },
           "a deny rule of the client's own policy (repeatable; deny wins over allow)")
        ->trigger_on_parse();
    tok.add_option("--default", default_action,
                   "allow or deny: what the client's policy does with targets no rule decides "
                   "(default deny once any rule is given)");
    tok.add_option("--policy", policy_json,
                   "the client's policy as JSON instead of --allow/--deny/--default, e.g. "
                   "'{\"default\":\"deny\",\"rules\":[{\"allow\":\"cidr=10.0.0.0/8\"}]}'");
  }

  // Fills c.groups and c.policy_json, or returns the usage error (exit 2).
  std::optional<std::string> apply(token::claims& c) const {
    bool built = !rules.empty() || !default_action.empty();
    if (c.r == token::role::agent && (built || !groups.empty() || !policy_json.empty())) {
      return std::string("--group, --allow, --deny, --default and --policy apply to client tokens; "
                         "an agent's policy lives in its own config (nl-agent.yaml policy:)");
    }
    for (const auto& g : groups) {
      if (!token::valid_identifier(g)) {
        return "--group '" + g + "' is not a group name; use 1-64 of letters, digits, '.', '_', '-'";
      }
      if (std::count(groups.begin(), groups.end(), g) > 1) {
        return "--group '" + g + "' is given twice; name each group once";
      }
    }
    if (groups.size() > token::max_groups) {
      return std::string("too many --group options; a token holds at most 64 groups");
    }
    c.groups = groups;
    if (built && !policy_json.empty()) {
      return std::string("--policy and --allow/--deny/--default are two ways to give the same policy; use one");
    }
    if (!default_action.empty() && default_action != "allow" && default_action != "deny") {
      return "--default '" + default_action + "' must be allow or deny";
    }
    if (built) {
      nl::acl::policy p;
      p.default_action = default_action == "allow" ? nl::acl::action::allow : nl::acl::action::deny;
      for (const auto& [act, spec] : rules) {
        auto r = nl::acl::parse_rule_spec(spec, act);
        if (!r) {
          return "--" + std::string(nl::acl::to_string(act)) + " '" + spec + "': " + r.error();
        }
        p.rules.push_back(std::move(*r));
      }
      c.policy_json = nl::acl::policy_to_json(p);
    } else {
      c.policy_json = policy_json;
    }
    // What the gateway and the agent will read back must parse: check it the same way.
    if (!c.policy_json.empty()) {
      if (auto back = nl::acl::policy_from_json(c.policy_json); !back) {
        return (built ? std::string("the policy built from --allow/--deny") : "--policy '" + policy_json + "'") +
               ": " + back.error();
      }
    }
    return std::nullopt;
  }
};

}  // namespace

int main(int argc, char** argv) {
  nl::tune_allocator();
  nl::raise_fd_limit();
  CLI::App app{"nl-gateway: the public rendezvous and relay of nl"};
  app.set_version_flag("--version", "nl-gateway 0.1.0");
  std::string config_path, listen, cert, key, secret_file, log_level, keepalive, keepalive_timeout, drain;
  bool plain = false, no_quic = false;
  app.add_option("-c,--config", config_path, "config file (default: search ./nl-gateway.yaml, ~/.config/nl/, /etc/nl/)");
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks one)");
  app.add_option("--tls-cert", cert, "PEM certificate chain");
  app.add_option("--tls-key", key, "PEM private key");
  app.add_flag("--plain", plain, "serve plain HTTP/WS (behind a TLS-terminating proxy)");
  app.add_flag("--no-quic", no_quic, "do not listen for QUIC on UDP (default: the same port as HTTPS, when TLS is on)");
  app.add_option("--secret-file", secret_file, "token signing secret (see gen-secret)");
  app.add_option("--keepalive", keepalive, "ping interval, e.g. 10s");
  app.add_option("--keepalive-timeout", keepalive_timeout, "declare a peer dead after this silence, e.g. 30s");
  app.add_option("--drain-timeout", drain, "on SIGTERM, how long streams may drain, e.g. 10s");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");

  auto* gen = app.add_subcommand("gen-secret", "print or write a new random token-signing secret");
  std::string gen_out;
  gen->add_option("--out", gen_out, "write to FILE (mode 0600) instead of stdout");

  auto* tok = app.add_subcommand("token", "issue a signed token for an agent or a client");
  std::string t_role, t_tenant, t_name, t_ttl = "30d";
  token_policy_options t_acl;
  tok->add_option("--role", t_role, "agent or client")->required();
  tok->add_option("--tenant", t_tenant, "tenant the peer belongs to")->required();
  tok->add_option("--name", t_name, "the agent's or client's name")->required();
  tok->add_option("--ttl", t_ttl, "validity, e.g. 12h, 30d (default 30d)");
  t_acl.add_to(*tok);
  tok->add_option("--secret-file", secret_file, "token signing secret");
  tok->add_option("-c,--config", config_path, "gateway config (for secret_file)");

  if (auto rc = nl::config::parse_command_line(app, argc, argv)) {
    return *rc;
  }

  if (gen->parsed()) {
    return gen_secret(gen_out);
  }

  auto found = nl::config::find_config("gateway", config_path);
  auto cfg = nl::config::load_gateway(found);
  if (!cfg) {
    return config_failure(cfg.error());
  }
  nl::config::config_error cli_err{"<command line>", 0, {}};
  if (!secret_file.empty()) cfg->secret_file = secret_file;

  if (tok->parsed()) {
    auto role = token::parse_role(t_role);
    auto ttl = nl::parse_duration(t_ttl);
    if (!role || !ttl) {
      std::cerr << "nl-gateway token: --role must be agent or client and --ttl a duration like 30d\n";
      return 2;
    }
    token::claims c;
    c.tenant = t_tenant;
    c.name = t_name;
    c.r = *role;
    if (auto err = t_acl.apply(c)) {
      std::cerr << "nl-gateway token: " << *err << "\n";
      return 2;
    }
    if (cfg->secret_file.empty()) {
      std::cerr << "nl-gateway token: no secret: pass --secret-file or -c with secret_file\n";
      return 2;
    }
    auto secret = read_secret(cfg->secret_file);
    if (!secret) {
      std::cerr << "nl-gateway: " << secret.error() << "\n";
      return 2;
    }
    c.iat = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    c.exp = c.iat + std::chrono::duration_cast<std::chrono::seconds>(*ttl).count();
    c.jti = token::new_jti();
    try {
      std::cout << token::issue(c, *secret) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "nl-gateway token: " << e.what() << "\n";
      return 2;
    }
    return 0;
  }

  if (!listen.empty()) cfg->listen = listen;
  if (plain) cfg->tls.reset();
  if (no_quic) cfg->quic = false;
  if (!cert.empty() || !key.empty()) cfg->tls = nl::config::tls_server_config{cert, key};
  if (!log_level.empty()) cfg->log_level = log_level;
  auto set_duration = [&](const std::string& text, std::chrono::milliseconds& field, const char* flag) {
    if (text.empty()) return true;
    auto d = nl::parse_duration(text);
    if (!d) {
      cli_err.message = std::string(flag) + " '" + text + "' is not a duration; use e.g. 500ms, 10s, 2m";
      return false;
    }
    field = *d;
    return true;
  };
  if (!set_duration(keepalive, cfg->session.keepalive, "--keepalive") ||
      !set_duration(keepalive_timeout, cfg->session.keepalive_timeout, "--keepalive-timeout") ||
      !set_duration(drain, cfg->drain_timeout, "--drain-timeout")) {
    return config_failure(cli_err);
  }
  if (auto e = nl::config::validate(*cfg)) {
    return config_failure(*e);
  }
  if (!nl::init_logging("nl-gateway", cfg->log_level)) {
    std::cerr << "nl-gateway: unknown log level '" << cfg->log_level << "'\n";
    return 2;
  }
  auto secret = read_secret(cfg->secret_file);
  if (!secret) {
    std::cerr << "nl-gateway: " << secret.error() << "\n";
    return 2;
  }

  boost::asio::io_context io(1);
  nl::gateway::gateway gw(io, *cfg, std::move(*secret));
  if (auto err = gw.start(); !err.empty()) {
    spdlog::error("{}", err);
    return 1;
  }
  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    gw.shutdown([&io] { io.stop(); });
  });
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading the revocation list");
      gw.reload_revocations();
      arm_hup();
    });
  };
  arm_hup();
  io.run();
  spdlog::info("stopped");
  return 0;
}
