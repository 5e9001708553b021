// nl-agent's application object: keeps the session to the gateway (transport::link), and
// for every stream the gateway opens: completes the end-to-end handshake when the stream
// carries one (the destination is inside it), checks the policy (the agent's own and the
// asking client's token policy; names before DNS, every resolved address after it),
// connects to the target with a deadline, answers the open with the precise outcome
// (refused, unreachable, timeout, DNS failure, denied + the rule), then relays bytes (TCP)
// or datagrams (UDP flows, closed after udp.idle_timeout without traffic).
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <expected>
#include <map>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/asio/ip/udp.hpp>

#include "acl/policy.hpp"
#include "config/config.hpp"
#include "e2e/e2e.hpp"
#include "transport/link.hpp"

namespace nl::agent {

class agent {
public:
  // `keys`: the agent's long-term e2e key pair; `psk`: from the e2e passphrase, if any.
  agent(boost::asio::io_context& io, config::agent_config cfg, std::string token, e2e::static_keypair keys,
        std::optional<e2e::key> psk);
  // Runs until stopped or refused; returns the process exit code (0 stopped, 1 replaced,
  // 3 authentication refused or revoked).
  awaitable<int> run();
  void stop();

  // Who asks and under which extra policy (the client's token policy, via the gateway).
  struct asker {
    std::string client;                 // token name
    std::vector<std::string> groups;
    std::shared_ptr<const acl::policy> policy;  // the client's token policy, if it has one
  };

private:
  awaitable<void> serve(std::shared_ptr<transport::session> s);
  awaitable<void> handle(std::unique_ptr<transport::incoming_stream> in);
  struct tcp_tunnel {
    std::unique_ptr<transport::stream> stream;
    boost::asio::ip::tcp::socket socket;
    std::string who, where;  // for the closing log line
    std::chrono::steady_clock::time_point started;
  };
  // Answers the OPEN (e2e, policy, resolve, connect): a TCP tunnel ready to relay, or
  // nullopt when refused or when it was a UDP flow (served to its end inside).
  awaitable<std::optional<tcp_tunnel>> setup(std::unique_ptr<transport::incoming_stream> in);

  // The allowed addresses of a target, or why there are none.
  struct resolution {
    std::vector<boost::asio::ip::address> addresses;
    errc code = errc::ok;
    std::string message;
  };
  acl::decision judge(const asker& who, const proto::target& t, std::string_view name,
                      const boost::asio::ip::address& a) const;
  awaitable<resolution> resolve(const asker& who, const proto::target& t);
  // The parsed form of a client's token policy (JSON from the gateway), parsed once per
  // distinct policy rather than on every stream; an error text when it cannot be read.
  std::expected<std::shared_ptr<const acl::policy>, std::string> client_policy(const std::string& json);

  struct dial_outcome {
    boost::asio::ip::tcp::socket socket;
    errc code = errc::ok;
    std::string message;
  };
  awaitable<dial_outcome> dial(const asker& who, const proto::target& t);
  awaitable<void> serve_udp(std::unique_ptr<transport::stream> s, boost::asio::ip::udp::socket sock);

  boost::asio::io_context& io_;
  config::agent_config cfg_;
  e2e::static_keypair keys_;
  std::optional<e2e::key> psk_;
  transport::link link_;
  std::size_t udp_flows_ = 0;
  std::map<std::string, std::shared_ptr<const acl::policy>> client_policies_;  // bounded cache
};

}  // namespace nl::agent
