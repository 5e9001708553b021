// Command-line overrides shared by nl-agent and nl-client (the options both accept on top
// of their config file): gateway URL, token, TLS trust, session timers, log level.
// Header-only so that only the programs pull in CLI11.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "common/units.hpp"
#include "config/config.hpp"

namespace nl::config {

// Parses the command line. Returns nullopt to go on, or the exit status: 0 after --help /
// --version, 2 for any usage error (CLI11's own codes would collide with ours).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return std::nullopt;
}

struct peer_overrides {
  std::string config_path;
  std::string gateway, token, token_file, ca, server_name, log_level, keepalive, keepalive_timeout, transport;
  bool insecure = false;

  void add_to(CLI::App& app) {
    app.add_option("-c,--config", config_path, "config file (default: search ./, ~/.config/nl/, /etc/nl/)");
    app.add_option("--gateway", gateway, "gateway URL: wss://host[:port][/prefix] or ws://...");
    app.add_option("--token", token, "access token (prefer --token-file: command lines are visible)");
    app.add_option("--token-file", token_file, "file holding the access token");
    app.add_option("--ca", ca, "PEM file of CA certificates to trust for the gateway");
    app.add_option("--server-name", server_name, "TLS name to send and verify (default: URL host)");
    app.add_flag("--insecure", insecure, "do not verify the gateway certificate (testing only)");
    app.add_option("--keepalive", keepalive, "ping interval, e.g. 10s");
    app.add_option("--keepalive-timeout", keepalive_timeout, "declare the gateway dead after this silence");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
    app.add_option("--transport", transport, "auto (QUIC, else WebSocket; default), quic or ws");
  }

  // Applies what was given; returns an error naming the option when a value is malformed.
  std::optional<config_error> apply(peer_config& p) const {
    auto err = [](std::string m) { return config_error{"<command line>", 0, std::move(m)}; };
    if (!gateway.empty()) p.gateway = gateway;
    if (!token.empty()) {
      p.token = token;
      p.token_file.clear();
    }
    if (!token_file.empty()) {
      p.token_file = token_file;
      p.token.clear();
    }
    if (!ca.empty()) p.tls.ca_file = ca;
    if (!server_name.empty()) p.tls.server_name = server_name;
    if (insecure) p.tls.insecure = true;
    if (!log_level.empty()) p.log_level = log_level;
    if (!transport.empty()) p.transport = transport;
    if (!keepalive.empty()) {
      auto d = parse_duration(keepalive);
      if (!d) return err("--keepalive '" + keepalive + "' is not a duration; use e.g. 10s");
      p.session.keepalive = *d;
    }
    if (!keepalive_timeout.empty()) {
      auto d = parse_duration(keepalive_timeout);
      if (!d) return err("--keepalive-timeout '" + keepalive_timeout + "' is not a duration; use e.g. 30s");
      p.session.keepalive_timeout = *d;
    }
    return std::nullopt;
  }
};

}  // namespace nl::config
