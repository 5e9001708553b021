// nl-client: parses the command line, loads the config and runs one sub-command.
#include <utility>

#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "client/client.hpp"
#include "common/log.hpp"
#include "common/fd_limit.hpp"
#include "common/malloc_tuning.hpp"
#include "config/cli.hpp"

int main(int argc, char** argv) {
  nl::tune_allocator();
  nl::raise_fd_limit();
  CLI::App app{"nl-client: reach the networks of nl agents from this machine"};
  app.set_version_flag("--version", "nl-client 0.1.0");
  app.require_subcommand(1);
  nl::config::peer_overrides peer;
  peer.add_to(app);

  auto* list = app.add_subcommand("list", "show the agents this token can reach");
  bool json = false;
  list->add_flag("--json", json, "print JSON");

  std::string agent;
  auto* connect = app.add_subcommand("connect", "one stream on stdin/stdout (ssh ProxyCommand)");
  std::string connect_target;
  connect->add_option("--agent", agent, "agent to go through (default: config 'agent')");
  connect->add_option("target", connect_target, "HOST:PORT as seen from the agent")->required();
  bool connect_udp = false;
  connect->add_flag("--udp", connect_udp, "a UDP flow: each read from stdin is one datagram, answers go to stdout");

  auto* forward = app.add_subcommand("forward", "forward local TCP (-L) and UDP (-U) ports to targets behind an agent");
  std::vector<std::string> specs;
  forward->add_option("--agent", agent, "agent to go through");
  forward->add_option("-L", specs, "[bind:]port:host:hostport (repeatable; port 0 picks one)");
  std::vector<std::string> udp_specs;
  forward->add_option("-U", udp_specs, "UDP: [bind:]port:host:hostport (repeatable)");

  auto* socks = app.add_subcommand("socks", "SOCKS5 (CONNECT and UDP ASSOCIATE) and HTTP CONNECT proxy into an agent's network");
  std::string listen, user, pass;
  socks->add_option("--agent", agent, "agent to go through");
  socks->add_option("--listen", listen, "IP:PORT to listen on (default 127.0.0.1:1080)");
  socks->add_option("--user", user, "require this SOCKS5 username (and HTTP Basic proxy auth)");
  socks->add_option("--pass", pass, "password for --user");
  bool early_reply = false;
  socks->add_flag("--early-reply", early_reply,
                  "answer CONNECT before the agent has connected: the first bytes go with the stream's OPEN "
                  "(one round trip less), but a failed connect just closes the connection (no error reply)");

  auto* tun = app.add_subcommand("tun", "capture routes into a TUN device: every TCP/UDP flow to them goes through the agent (root)");
  nl::client::tun_options tun_opt;
  tun->add_option("--agent", agent, "agent to go through");
  tun->add_option("--route", tun_opt.routes, "CIDR range to capture, e.g. 192.168.1.0/24 or fd00::/64 (repeatable)");
  tun->add_flag("--default-route", tun_opt.default_route, "capture everything (the gateway's own address bypasses the TUN)");
  tun->add_option("--mtu", tun_opt.mtu, "TUN MTU (default 1500; 9000 is much faster on one machine)");
  tun->add_option("--dev", tun_opt.device, "TUN device name (default nl0)");
  bool no_fake_dns = false, no_offload = false;
  tun->add_flag("--no-offload", no_offload, "one packet per TUN read/write (no TSO/GSO super-packets)");
  tun->add_flag("--no-fake-dns", no_fake_dns, "relay DNS queries as plain UDP instead of answering A/AAAA with fake addresses");

  std::vector<std::string> pins;
  std::string passphrase_file;
  app.add_option("--pin", pins, "AGENT=KEY: the agent's e2e public key (from `nl-agent key`); streams to it are end-to-end encrypted (repeatable)");
  app.add_option("--e2e-passphrase-file", passphrase_file, "file whose first line is the e2e passphrase shared with the agents");
  for (auto* sub : {list, connect, forward, socks, tun}) {
    sub->fallthrough();  // global options may follow the sub-command
  }
  if (auto rc = nl::config::parse_command_line(app, argc, argv)) {
    return *rc;
  }

  auto fail = [](const nl::config::config_error& e) {
    std::cerr << "nl-client: " << e.to_string() << "\n";
    return 2;
  };
  auto cfg = nl::config::load_client(nl::config::find_config("client", peer.config_path));
  if (!cfg) {
    return fail(cfg.error());
  }
  if (auto e = peer.apply(cfg->peer)) {
    return fail(*e);
  }
  nl::config::config_error cli{"<command line>", 0, {}};
  if (!agent.empty()) cfg->agent = agent;
  if (!listen.empty()) cfg->socks_listen = listen;
  if (!user.empty()) cfg->socks_user = user;
  if (!pass.empty()) cfg->socks_pass = pass;
  if (early_reply) cfg->socks_early_reply = true;
  if (cfg->socks_user.empty() != cfg->socks_pass.empty()) {
    cli.message = "--user and --pass go together";
    return fail(cli);
  }
  for (auto& p : pins) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      cli.message = "--pin '" + p + "' is not AGENT=KEY";
      return fail(cli);
    }
    cfg->e2e.pins[p.substr(0, eq)] = p.substr(eq + 1);
  }
  if (!passphrase_file.empty()) cfg->e2e.passphrase_file = passphrase_file;
  // Forwards given on the command line (-L or -U) replace both lists of the config file.
  std::vector<nl::config::forward_spec> forwards = cfg->forwards;
  std::vector<nl::config::forward_spec> udp_forwards = cfg->udp_forwards;
  if (!specs.empty() || !udp_specs.empty()) {
    udp_forwards.clear();
    for (auto& s : udp_specs) {
      auto f = nl::config::parse_forward(s);
      if (!f) {
        cli.message = "-U '" + s + "' is not [bind:]port:host:hostport";
        return fail(cli);
      }
      udp_forwards.push_back(*f);
    }
  }
  if (!specs.empty() || !udp_specs.empty()) {
    forwards.clear();
    for (auto& s : specs) {
      auto f = nl::config::parse_forward(s);
      if (!f) {
        cli.message = "-L '" + s + "' is not [bind:]port:host:hostport";
        return fail(cli);
      }
      forwards.push_back(*f);
    }
  }
  if (auto e = nl::config::validate(*cfg)) {
    return fail(*e);
  }
  bool needs_agent = !list->parsed();
  if (needs_agent && cfg->agent.empty()) {
    cli.message = "no agent chosen: pass --agent NAME or set 'agent' in the config";
    return fail(cli);
  }
  if (forward->parsed() && forwards.empty() && udp_forwards.empty()) {
    cli.message = "forward needs at least one -L or -U [bind:]port:host:hostport (or 'forwards' in the config)";
    return fail(cli);
  }
  nl::proto::target dest;
  if (connect->parsed()) {
    auto hp = nl::parse_host_port(connect_target, false);
    if (!hp || !nl::proto::valid_host(hp->host)) {
      cli.message = "target '" + connect_target + "' is not HOST:PORT";
      return fail(cli);
    }
    dest = {hp->host, hp->port, connect_udp ? nl::proto::transport_protocol::udp : nl::proto::transport_protocol::tcp};
  }
  auto token = nl::config::read_token(cfg->peer);
  if (!token) {
    return fail(token.error());
  }
  // connect's stdout is the data channel: keep logs quiet unless asked.
  auto level = cfg->peer.log_level;
  if (connect->parsed() && peer.log_level.empty() && level == "info") {
    level = "warn";
  }
  if (!nl::init_logging("nl-client", level)) {
    std::cerr << "nl-client: unknown log level\n";
    return 2;
  }

  boost::asio::io_context io(1);
  nl::client::client c(io, *cfg, std::move(*token));
  if (auto e = c.init_e2e(); !e.empty()) {
    std::cerr << "nl-client: " << e << "\n";
    return 2;
  }
  int code = 0;
  auto done = [&](std::exception_ptr e, int rc) {
    code = e ? 1 : rc;
    io.stop();
  };
  if (list->parsed()) {
    boost::asio::co_spawn(io, c.list(json), done);
  } else if (connect->parsed()) {
    boost::asio::co_spawn(io, c.connect(cfg->agent, dest), done);
  } else if (forward->parsed()) {
    boost::asio::co_spawn(io, c.forward(cfg->agent, forwards, udp_forwards), done);
  } else if (tun->parsed()) {
    tun_opt.fake_dns = !no_fake_dns;
    tun_opt.offload = !no_offload;
    boost::asio::co_spawn(io, c.tun(cfg->agent, tun_opt), done);
  } else {
    boost::asio::co_spawn(io, c.socks(cfg->agent, cfg->socks_listen), done);
  }
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) {
      c.stop();
    }
  });
  io.run();
  return code;
}
