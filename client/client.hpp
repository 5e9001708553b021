// nl-client's application object. One session to the gateway (transport::link, with
// reconnects) serves every local front end: the SOCKS5 + HTTP CONNECT proxy, -L port
// forwards and the stdin/stdout pipe. Each local connection becomes one stream to the
// chosen agent; errors from the far side come back as the right SOCKS5 reply / HTTP status
// / message instead of a hang.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/asio/ip/udp.hpp>

#include "config/config.hpp"
#include "transport/link.hpp"
#include "transport/secure_stream.hpp"

namespace nl::client {

struct tun_options {
  std::string device = "nl0";
  std::vector<std::string> routes;  // CIDR ranges to capture
  bool default_route = false;       // capture everything (two /1 routes per family)
  unsigned mtu = 1500;
  bool fake_dns = true;             // answer A/AAAA to port 53 in the captured ranges with fake addresses
  bool offload = true;              // TUN segmentation offload (64 KiB reads and writes) when the kernel has it
};

class client {
public:
  client(boost::asio::io_context& io, config::client_config cfg, std::string token);

  // Reads the pinned agent keys (and the passphrase file) of cfg.e2e; returns an error
  // sentence, or "" when ready. Streams to a pinned agent are always end-to-end encrypted.
  std::string init_e2e();

  // Sub-commands; each returns the process exit code.
  awaitable<int> list(bool json);
  awaitable<int> connect(std::string agent, proto::target dest);  // dest.protocol udp: datagrams
  awaitable<int> forward(std::string agent, std::vector<config::forward_spec> specs,
                         std::vector<config::forward_spec> udp_specs);
  awaitable<int> socks(std::string agent, std::string listen);
  awaitable<int> tun(std::string agent, tun_options o);  // needs root

  void stop();

private:
  // Opens a stream to `agent`/`dest`, waiting for the session up to connect_timeout.
  awaitable<transport::open_outcome> open(const std::string& agent, const proto::target& dest);
  // For forwards and `connect`, whose first bytes need no answer first: opens without waiting
  // for the agent (transport::opening_stream), so those bytes travel with the OPEN: one round
  // trip to the first reply instead of two. End-to-end streams (their keys come with the
  // answer) and UDP flows wait as open() does; `opening` is then null.
  struct piped_stream {
    std::unique_ptr<transport::stream> stream;  // null: `error`, `message` say why
    transport::opening_stream* opening = nullptr;
    error_code error;
    std::string message;
  };
  awaitable<piped_stream> open_piped(const std::string& agent, const proto::target& dest);
  // An open() result as a piped_stream whose answer has come (`opening` null). A plain
  // function: see the note on g++ 12 coroutines in transport/mux/mux_internal.hpp.
  static piped_stream answered(transport::open_outcome o);
  // The agent's verdict on a piped stream (ok at once for one opened by open()).
  static awaitable<transport::open_answer> verdict(const piped_stream& p);
  // Keeps the link running in the background; sets link_result_ when it ends.
  void start_link();
  awaitable<int> serve_forever();  // until stop() or a fatal link end
  // Opens a listening socket on bind:port, kept in acceptors_ so stop() closes it; prints the
  // reason and returns null on failure.
  boost::asio::ip::tcp::acceptor* listen_on(const boost::asio::ip::address& bind, std::uint16_t port);
  // Accepts until the acceptor closes and spawns handle(socket) for each connection.
  void serve_acceptor(boost::asio::ip::tcp::acceptor& acc,
                      std::function<awaitable<void>(boost::asio::ip::tcp::socket)> handle);
  awaitable<void> forward_one(boost::asio::ip::tcp::socket sock, std::string agent, proto::target dest);
  awaitable<void> proxy_one(boost::asio::ip::tcp::socket sock, std::string agent);
  struct proxy_request;
  awaitable<std::optional<proxy_request>> proxy_handshake(boost::asio::ip::tcp::socket& sock);
  awaitable<piped_stream> proxy_open(boost::asio::ip::tcp::socket& sock, const std::string& agent,
                                     const proxy_request& req);
  awaitable<void> udp_associate(boost::asio::ip::tcp::socket control, std::string agent,
                                boost::asio::ip::udp::endpoint client_hint);
  // connect --udp, after the flow's stream is open: stdin reads -> datagrams -> stdout.
  awaitable<int> pipe_datagrams(transport::stream& s, proto::target dest);
  friend class udp_front;
  int exit_code_for_link() const;

  boost::asio::io_context& io_;
  config::client_config cfg_;
  std::string token_;
  transport::link link_;
  std::optional<transport::link_result> link_result_;
  async_event link_ended_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  bool stopping_ = false;
  bool piping_ = false;  // running `connect`
  std::map<std::string, transport::e2e_peer> pins_;  // agent name -> pinned key (+ psk)
};

}  // namespace nl::client
