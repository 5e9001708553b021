// nl-agent's application object: keeps the session to the gateway (transport::link), and
// for every stream the gateway opens: checks the policy (names before DNS, every resolved
// address after it), connects to the target with a deadline, answers the open with the
// precise outcome (refused, unreachable, timeout, DNS failure, denied + the rule), then
// relays bytes until both sides are done.
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"
#include "transport/link.hpp"

namespace nl::agent {

class agent {
public:
  agent(boost::asio::io_context& io, config::agent_config cfg, std::string token);
  // Runs until stopped or refused; returns the process exit code (0 stopped, 1 replaced,
  // 3 authentication refused or revoked).
  awaitable<int> run();
  void stop();

private:
  awaitable<void> serve(std::shared_ptr<transport::session> s);
  awaitable<void> handle(std::unique_ptr<transport::incoming_stream> in);

  struct dial_outcome {
    boost::asio::ip::tcp::socket socket;
    errc code = errc::ok;
    std::string message;
  };
  awaitable<dial_outcome> dial(const proto::target& t);

  boost::asio::io_context& io_;
  config::agent_config cfg_;
  transport::link link_;
};

}  // namespace nl::agent
