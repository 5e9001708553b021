// nl-gateway's application object: authenticates agents and clients on the HTTP(S)
// listener (tokens checked BEFORE the WebSocket upgrade, so a refusal is a plain 401 with
// a reason), keeps the registry of online agents per tenant, and relays every client
// stream to the agent it names through a splice of the two streams. A client token may
// carry a policy: the gateway enforces it on the destinations it can see (streams without
// end-to-end encryption) and always hands it, with the client's identity and groups, to
// the agent, which enforces it after resolution. Memory per stream is
// bounded by the two windows; nothing is buffered beyond them.
// Thread-safety: one executor (the gateway runs a single io thread).
#pragma once

#include <utility>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "acl/policy.hpp"
#include "common/async.hpp"
#include "config/config.hpp"
#include "proto/token.hpp"
#include "transport/quic/quic_session.hpp"
#include "transport/ws/ws_listener.hpp"

namespace nl::gateway {

class gateway final : public transport::ws::request_handler {
public:
  gateway(boost::asio::io_context& io, config::gateway_config cfg, std::vector<std::byte> secret);
  ~gateway() override;

  // Binds and starts listening; returns an error text (empty on success).
  std::string start();
  // SIGTERM: stop accepting, ask every session to drain, exit when all are gone or the
  // drain deadline passed. `on_done` runs once at the end.
  void shutdown(std::function<void()> on_done);
  // SIGHUP: re-read the revocation list and disconnect sessions whose token is now revoked.
  void reload_revocations();

  transport::ws::request_decision on_request(const transport::ws::http_request_info& req) override;

  // A client session's identity and token policy, shared by its streams.
  struct client_context {
    std::string id;                     // "tenant/name"
    std::string name;                   // the token's name, for client rules
    std::vector<std::string> groups;
    std::string policy_json;            // forwarded to agents ("" = none)
    std::optional<acl::policy> policy;  // parsed, for the gateway's own check
  };

private:
  struct peer_entry {
    std::shared_ptr<transport::session> session;
    proto::token::claims claims;
    std::string address;
    std::chrono::system_clock::time_point since;
  };

  std::expected<proto::token::claims, std::string> authenticate(const transport::ws::http_request_info& req,
                                                                proto::token::role want) const;
  // The checks every session passes, whichever transport brought its token: signature,
  // expiry, role and revocation; then, for agents, the duplicate-name rule (the refusal
  // text, or nullopt); then the HELLO the gateway answers with.
  std::expected<proto::token::claims, std::string> check_token(std::string_view token, proto::token::role want) const;
  std::optional<std::string> duplicate_refusal(const proto::token::claims& c) const;
  // For clients: the refusal text when this client already holds max_client_sessions.
  std::optional<std::string> session_limit_refusal(const proto::token::claims& c) const;
  proto::hello_body hello_for(const proto::token::claims& c) const;
  bool is_revoked(const proto::token::claims& c) const;
  transport::ws::request_decision upgrade(const transport::ws::http_request_info& req, proto::token::claims c);
  transport::ws::http_response list_agents(const proto::token::claims& c) const;
  awaitable<void> serve_agent(std::shared_ptr<transport::session> s, proto::token::claims c, std::string address);
  awaitable<void> serve_client(std::shared_ptr<transport::session> s, proto::token::claims c, std::string address);
  static std::shared_ptr<const client_context> make_client_context(const proto::token::claims& c);
  awaitable<void> relay_stream(std::shared_ptr<const client_context> client,
                               std::unique_ptr<transport::incoming_stream> in);
  struct stream_pair {
    std::unique_ptr<transport::deferred_stream> client;  // answered with the agent's answer
    std::unique_ptr<transport::opening_stream> agent;
    std::string what;  // "client -> agent target", for the closing log line
    clock::time_point started;
  };
  // Checks the client's policy, finds the agent and opens the stream there without waiting
  // for its answer (the splice passes it on, and the client's early data goes ahead of it).
  // nullopt when refused here (the client's OPEN is then answered).
  awaitable<std::optional<stream_pair>> open_pair(std::shared_ptr<const client_context> client,
                                                  std::unique_ptr<transport::incoming_stream> in);
  void session_ended();
  // Registers an authenticated session (either transport) and serves it until it ends.
  void adopt(std::shared_ptr<transport::session> s, proto::token::claims c, std::string address);
  awaitable<void> accept_quic();
  void check_quic(transport::quic::pending_session& p);

  boost::asio::io_context& io_;
  config::gateway_config cfg_;
  std::vector<std::byte> secret_;
  std::unique_ptr<transport::ws::listener> listener_;
  std::unique_ptr<transport::quic::listener> quic_;  // UDP, same host:port, when TLS is on
  std::map<std::string, peer_entry> agents_;                 // "tenant/name" -> online agent
  std::set<std::shared_ptr<transport::session>> sessions_;   // every live session
  std::map<transport::session*, proto::token::claims> session_claims_;
  std::map<std::string, std::uint32_t> client_sessions_;      // "tenant/name" -> live client sessions
  std::set<std::string> revoked_;
  bool shutting_down_ = false;
  async_event sessions_changed_;
};

}  // namespace nl::gateway
