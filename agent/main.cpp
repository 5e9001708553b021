// nl-agent: parses the command line, loads the config and runs the agent.
#include <utility>

#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "agent/agent.hpp"
#include "common/log.hpp"
#include "common/fd_limit.hpp"
#include "common/malloc_tuning.hpp"
#include "config/cli.hpp"

int main(int argc, char** argv) {
  nl::tune_allocator();
  nl::raise_fd_limit();
  CLI::App app{"nl-agent: serves a private network to authorised nl clients through the gateway"};
  app.set_version_flag("--version", "nl-agent 0.1.0");
  nl::config::peer_overrides peer;
  peer.add_to(app);
  std::vector<std::string> allow, deny;
  std::string default_action, dial_timeout;
  app.add_option("--allow", allow, "allow rule, e.g. 'cidr=192.168.1.0/24;ports=22,80-443' (repeatable)");
  app.add_option("--deny", deny, "deny rule, e.g. 'cidr=169.254.0.0/16' or 'domain=*.corp' (repeatable)");
  app.add_option("--default", default_action, "policy default when no rule matches: allow or deny");
  app.add_option("--dial-timeout", dial_timeout, "how long to try connecting to a target, e.g. 10s");
  std::string key_file, passphrase_file;
  bool require_e2e = false;
  app.add_option("--key-file", key_file, "end-to-end key pair file (created 0600 on first start)");
  app.add_option("--e2e-passphrase-file", passphrase_file, "file whose first line is the e2e passphrase");
  app.add_flag("--require-e2e", require_e2e, "refuse every stream that is not end-to-end encrypted");
  auto* key = app.add_subcommand("key", "print this agent's end-to-end public key and fingerprint (creating the key pair if needed), then exit");
  key->fallthrough();
  app.require_subcommand(0, 1);
  if (auto rc = nl::config::parse_command_line(app, argc, argv)) {
    return *rc;
  }

  auto fail = [](const nl::config::config_error& e) {
    std::cerr << "nl-agent: " << e.to_string() << "\n";
    return 2;
  };
  auto cfg = nl::config::load_agent(nl::config::find_config("agent", peer.config_path));
  if (!cfg) {
    return fail(cfg.error());
  }
  if (auto e = peer.apply(cfg->peer)) {
    return fail(*e);
  }
  nl::config::config_error cli{"<command line>", 0, {}};
  // Command-line rules come before the file's: they are the more specific intent.
  std::vector<nl::acl::rule> cli_rules;
  auto add_rules = [&](const std::vector<std::string>& specs, nl::acl::action act) {
    for (auto& s : specs) {
      auto r = nl::acl::parse_rule_spec(s, act);
      if (!r) {
        cli.message = std::string("--") + std::string(nl::acl::to_string(act)) + " '" + s + "': " + r.error();
        return false;
      }
      cli_rules.push_back(std::move(*r));
    }
    return true;
  };
  if (!add_rules(deny, nl::acl::action::deny) || !add_rules(allow, nl::acl::action::allow)) {
    return fail(cli);
  }
  cfg->policy.rules.insert(cfg->policy.rules.begin(), cli_rules.begin(), cli_rules.end());
  if (!default_action.empty()) {
    if (default_action != "allow" && default_action != "deny") {
      cli.message = "--default must be allow or deny";
      return fail(cli);
    }
    cfg->policy.default_action = default_action == "allow" ? nl::acl::action::allow : nl::acl::action::deny;
  }
  if (!dial_timeout.empty()) {
    auto d = nl::parse_duration(dial_timeout);
    if (!d) {
      cli.message = "--dial-timeout '" + dial_timeout + "' is not a duration";
      return fail(cli);
    }
    cfg->dial_timeout = *d;
  }
  if (!key_file.empty()) cfg->e2e.key_file = key_file;
  if (!passphrase_file.empty()) cfg->e2e.passphrase_file = passphrase_file;
  if (require_e2e) cfg->e2e.require = true;
  auto keys = nl::e2e::load_or_create_keypair(cfg->e2e.key_file);
  if (!keys) {
    std::cerr << "nl-agent: " << keys.error() << "\n";
    return 2;
  }
  if (key->parsed()) {
    std::cout << nl::e2e::encode_public_key(keys->public_key) << "\n"
              << "fingerprint " << nl::e2e::fingerprint(keys->public_key) << "\n";
    return 0;
  }
  if (auto e = nl::config::validate(*cfg)) {
    return fail(*e);
  }
  std::optional<nl::e2e::key> psk;
  if (!cfg->e2e.passphrase_file.empty()) {
    std::ifstream f(cfg->e2e.passphrase_file);
    std::string phrase;
    if (!f || !std::getline(f, phrase) || phrase.empty()) {
      std::cerr << "nl-agent: " << cfg->e2e.passphrase_file << ": cannot read the e2e passphrase (first line); "
                << "create the file or remove e2e.passphrase_file\n";
      return 2;
    }
    psk = nl::e2e::derive_psk(phrase, keys->public_key);
  }
  auto token = nl::config::read_token(cfg->peer);
  if (!token) {
    return fail(token.error());
  }
  if (!nl::init_logging("nl-agent", cfg->peer.log_level)) {
    std::cerr << "nl-agent: unknown log level\n";
    return 2;
  }
  spdlog::info("policy: default {}, {} rules", nl::acl::to_string(cfg->policy.default_action), cfg->policy.rules.size());
  spdlog::info("end-to-end key {} (fingerprint {}){}{}", nl::e2e::encode_public_key(keys->public_key),
               nl::e2e::fingerprint(keys->public_key), psk ? ", with passphrase" : "",
               cfg->e2e.require ? ", e2e required" : "");

  boost::asio::io_context io(1);
  nl::agent::agent a(io, *cfg, std::move(*token), *keys, psk);
  int code = 0;
  boost::asio::co_spawn(io, a.run(), [&](std::exception_ptr e, int rc) {
    code = e ? 1 : rc;
    io.stop();
  });
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) {
      spdlog::info("shutting down");
      a.stop();
    }
  });
  io.run();
  return code;
}
