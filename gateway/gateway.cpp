#include "gateway/gateway.hpp"

#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/units.hpp"
#include "transport/relay.hpp"
#include "transport/ws/subprotocol.hpp"

namespace nl::gateway {
namespace {

using transport::ws::http_request_info;
using transport::ws::http_response;
using transport::ws::request_decision;
namespace token = proto::token;

constexpr std::chrono::milliseconds agent_open_timeout{30'000};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  auto tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

http_response refuse(unsigned status, std::string_view reason) {
  http_response r{status, "nl: " + std::string(reason) + "\n"};
  r.headers.emplace_back("X-NL-Error", std::string(reason));
  if (status == 401) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"nl\"");
  }
  return r;
}

std::string identity(const token::claims& c) { return c.tenant + "/" + c.name; }

std::string describe_peer(const http_request_info& req) {
  if (!req.x_forwarded_for.empty()) {
    auto first = req.x_forwarded_for.substr(0, req.x_forwarded_for.find(','));
    return first + " (via " + req.remote + ")";
  }
  return req.remote;
}

}  // namespace

gateway::gateway(boost::asio::io_context& io, config::gateway_config cfg, std::vector<std::byte> secret)
    : io_(io), cfg_(std::move(cfg)), secret_(std::move(secret)), sessions_changed_(io.get_executor()) {
  reload_revocations();
}

gateway::~gateway() = default;

std::string gateway::start() {
  transport::ws::listener_options lo;
  lo.listen = cfg_.listen;
  lo.max_pending = cfg_.max_pending_connections;
  lo.max_pending_per_address = cfg_.max_pending_per_address;
  if (cfg_.tls) {
    lo.cert_file = cfg_.tls->cert_file;
    lo.key_file = cfg_.tls->key_file;
  }
  auto l = transport::ws::listener::create(io_.get_executor(), lo, *this);
  if (!l) {
    return l.error();
  }
  listener_ = std::move(*l);
  listener_->start();
  auto ep = listener_->local_endpoint();
  spdlog::info("listening on {} ({})", host_port{ep.address().to_string(), ep.port()}.to_string(),
               listener_->tls() ? "tls" : "plain");
  if (cfg_.quic && cfg_.tls) {
    // QUIC on the same port number over UDP, with the same certificate.
    transport::quic::listener_options qo;
    qo.listen = host_port{ep.address().to_string(), ep.port()}.to_string();
    qo.cert_file = cfg_.tls->cert_file;
    qo.key_file = cfg_.tls->key_file;
    qo.max_pending = cfg_.max_pending_connections;
    qo.max_pending_per_address = cfg_.max_pending_per_address;
    qo.quic.keepalive = cfg_.session.keepalive;
    qo.quic.idle_timeout = cfg_.session.keepalive_timeout;
    qo.quic.max_streams = cfg_.session.max_streams;
    qo.quic.log_name = "quic";
    auto q = transport::quic::listener::create(io_.get_executor(), qo);
    if (!q) {
      // WebSocket still serves everyone (auto peers fall back); say why QUIC is missing.
      spdlog::warn("no QUIC: cannot listen on udp {}: {} (WebSocket only; set quic: false to silence this)",
                   qo.listen, q.error());
      return {};
    }
    quic_ = std::move(*q);
    auto qep = quic_->local_endpoint();
    spdlog::info("listening on {} (quic)", host_port{qep.address().to_string(), qep.port()}.to_string());
    asio::co_spawn(io_, accept_quic(), asio::detached);
  }
  return {};
}

awaitable<void> gateway::accept_quic() {
  while (quic_) {
    auto p = co_await quic_->accept();
    if (!p) {
      break;
    }
    check_quic(**p);
  }
}

// A QUIC client's HELLO carries its token and, as its info, the endpoint it asks for (the
// WebSocket path); the checks are the WebSocket path's (check_token, duplicate_refusal).
void gateway::check_quic(transport::quic::pending_session& p) {
  auto address = std::string(p.remote_address());
  if (shutting_down_) {
    p.reject(errc::session_closed, "gateway shutting down");
    return;
  }
  if (p.token().empty()) {
    p.reject(errc::auth_failed, "no token (a reachability probe)");  // links in auto mode probe QUIC so
    return;
  }
  const auto& ep = p.client_info();
  bool want_agent = ep.ends_with("/v1/agent"), want_client = ep.ends_with("/v1/client");
  auto refuse = [&](const std::string& why) {
    spdlog::warn("refused quic session from {}: {}", address, why);
    p.reject(errc::auth_failed, why);
  };
  if (!want_agent && !want_client) {
    refuse("no such endpoint: ask for /v1/agent or /v1/client");
    return;
  }
  auto c = check_token(p.token(), want_agent ? token::role::agent : token::role::client);
  if (!c) {
    refuse(c.error());
    return;
  }
  if (auto why = duplicate_refusal(*c)) {
    p.reject(errc::auth_failed, *why);
    return;
  }
  if (auto why = session_limit_refusal(*c)) {
    spdlog::warn("refused quic session from {}: {}", address, *why);
    p.reject(errc::limit, *why);
    return;
  }
  if (auto s = p.accept(hello_for(*c))) {
    adopt(std::move(s), std::move(*c), address);
  }
}

void gateway::reload_revocations() {
  std::set<std::string> r(cfg_.revoked.begin(), cfg_.revoked.end());
  if (!cfg_.revoked_file.empty()) {
    std::ifstream in(cfg_.revoked_file);
    if (!in) {
      spdlog::error("cannot read revoked_file {}; keeping the previous list", cfg_.revoked_file);
      return;
    }
    std::string line;
    while (std::getline(in, line)) {
      auto hash = line.find('#');
      if (hash != std::string::npos) line.resize(hash);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      std::size_t i = 0;
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i < line.size()) r.insert(line.substr(i));
    }
  }
  revoked_ = std::move(r);
  spdlog::info("revocation list: {} entries", revoked_.size());
  // Sessions whose token is now revoked are closed at once.
  std::vector<std::shared_ptr<transport::session>> kick;
  for (auto& s : sessions_) {
    auto it = session_claims_.find(s.get());
    if (it != session_claims_.end() && is_revoked(it->second)) {
      kick.push_back(s);
    }
  }
  for (auto& s : kick) {
    spdlog::warn("closing session of {}: token revoked", identity(session_claims_[s.get()]));
    s->close(proto::goaway_code::revoked, "token revoked");
  }
}

bool gateway::is_revoked(const token::claims& c) const {
  return (!c.jti.empty() && revoked_.count(c.jti)) || revoked_.count(identity(c));
}

std::expected<token::claims, std::string> gateway::authenticate(const http_request_info& req, token::role want) const {
  std::string_view auth = req.authorization;
  if (auth.empty()) {
    return std::unexpected(std::string(token::reason::missing));
  }
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() < bearer.size() || strncasecmp(auth.data(), bearer.data(), bearer.size()) != 0) {
    return std::unexpected(std::string(token::reason::malformed));
  }
  return check_token(auth.substr(bearer.size()), want);
}

std::expected<token::claims, std::string> gateway::check_token(std::string_view tok, token::role want) const {
  auto c = token::verify(tok, secret_, unix_now());
  if (!c) {
    return std::unexpected(c.error());
  }
  if (c->r != want) {
    return std::unexpected(want == token::role::agent ? "wrong role: this endpoint needs an agent token"
                                                      : "wrong role: this endpoint needs a client token");
  }
  if (is_revoked(*c)) {
    return std::unexpected("token revoked");
  }
  return c;
}

std::optional<std::string> gateway::duplicate_refusal(const token::claims& c) const {
  if (c.r == token::role::agent && cfg_.duplicate_agent == "refuse") {
    auto it = agents_.find(identity(c));
    if (it != agents_.end() && it->second.session->is_open()) {
      return "an agent named '" + identity(c) + "' is already online";
    }
  }
  return std::nullopt;
}

std::optional<std::string> gateway::session_limit_refusal(const token::claims& c) const {
  if (c.r != token::role::client) {
    return std::nullopt;  // one session per agent name anyway (duplicate_agent)
  }
  auto it = client_sessions_.find(identity(c));
  if (it == client_sessions_.end() || it->second < cfg_.max_client_sessions) {
    return std::nullopt;
  }
  return "client '" + identity(c) + "' already has " + std::to_string(it->second) +
         (it->second == 1 ? " session" : " sessions") +
         " open, the gateway's max_client_sessions; close one, or raise the limit on the gateway";
}

proto::hello_body gateway::hello_for(const token::claims& c) const {
  return proto::hello_body{proto::protocol_version, static_cast<std::uint32_t>(cfg_.session.keepalive.count()),
                           cfg_.session.max_streams, identity(c), "nl-gateway 0.1.0"};
}

request_decision gateway::on_request(const http_request_info& req) {
  auto path = std::string_view(req.target).substr(0, req.target.find('?'));
  if (shutting_down_) {
    return refuse(503, "gateway shutting down");
  }
  if (path == "/healthz") {
    return http_response{200, "ok\n"};
  }
  bool agent_ep = path.ends_with("/v1/agent");
  bool client_ep = path.ends_with("/v1/client");
  bool list_ep = path.ends_with("/v1/agents");
  if (!agent_ep && !client_ep && !list_ep) {
    return refuse(404, "no such endpoint");
  }
  auto want = agent_ep ? token::role::agent : token::role::client;
  auto c = authenticate(req, want);
  if (!c) {
    spdlog::warn("refused {} {} from {}: {}", req.method, path, describe_peer(req), c.error());
    return refuse(401, c.error());
  }
  if (list_ep) {
    return list_agents(*c);
  }
  if (!req.websocket) {
    return refuse(426, "this endpoint needs a WebSocket upgrade");
  }
  if (!transport::ws::lists_subprotocol(req.subprotocols, transport::ws::subprotocol) &&
      !transport::ws::lists_subprotocol(req.subprotocols, transport::ws::subprotocol_early)) {
    return refuse(400, "unsupported protocol version: offer Sec-WebSocket-Protocol nl.2 or nl.1");
  }
  if (auto why = duplicate_refusal(*c)) {
    return refuse(409, *why);
  }
  if (auto why = session_limit_refusal(*c)) {
    spdlog::warn("refused {} from {}: {}", path, describe_peer(req), *why);
    return refuse(429, *why);
  }
  return upgrade(req, std::move(*c));
}

request_decision gateway::upgrade(const http_request_info& req, token::claims c) {
  transport::ws::upgrade_accept up;
  up.mux.initiator = false;
  up.mux.early_data = transport::ws::lists_subprotocol(req.subprotocols, transport::ws::subprotocol_early);
  up.mux.keepalive = cfg_.session.keepalive;
  up.mux.keepalive_timeout = cfg_.session.keepalive_timeout;
  up.mux.window = cfg_.session.window;
  up.mux.max_streams = cfg_.session.max_streams;
  up.mux.log_name = std::string(token::to_string(c.r)) + " " + identity(c);
  up.mux.hello = hello_for(c);
  auto address = describe_peer(req);
  up.on_session = [this, c = std::move(c), address](std::shared_ptr<transport::session> s) {
    adopt(std::move(s), c, address);
  };
  return up;
}

void gateway::adopt(std::shared_ptr<transport::session> s, token::claims c, std::string address) {
  sessions_.insert(s);
  session_claims_[s.get()] = c;
  if (c.r == token::role::client) {
    ++client_sessions_[identity(c)];
  }
  // A session whose handshake finished after SIGTERM (the peer may already have seen our
  // HELLO and think it is up) is drained like the others; otherwise the shutdown would wait
  // for it until drain_timeout.
  if (shutting_down_) {
    s->drain(proto::goaway_code::normal, "gateway shutting down");
  }
  auto on_exit = [this, s](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("session task failed: {}", x.what());
      }
    }
    if (auto it = session_claims_.find(s.get()); it != session_claims_.end() && it->second.r == token::role::client) {
      if (auto n = client_sessions_.find(identity(it->second)); n != client_sessions_.end() && --n->second == 0) {
        client_sessions_.erase(n);
      }
    }
    session_claims_.erase(s.get());
    sessions_.erase(s);
    session_ended();
  };
  if (c.r == token::role::agent) {
    asio::co_spawn(io_, serve_agent(s, c, address), on_exit);
  } else {
    asio::co_spawn(io_, serve_client(s, c, address), on_exit);
  }
}

http_response gateway::list_agents(const token::claims& c) const {
  auto arr = nlohmann::json::array();
  auto prefix = c.tenant + "/";
  for (auto& [key, e] : agents_) {
    if (key.compare(0, prefix.size(), prefix) != 0 || !e.session->is_open()) {
      continue;
    }
    arr.push_back({{"name", e.claims.name},
                   {"online_since", iso8601(e.since)},
                   {"address", e.address},
                   {"transport", std::string(e.session->transport_name())},
                   {"streams", e.session->stream_count()}});
  }
  http_response r{200, arr.dump() + "\n", "application/json"};
  return r;
}

namespace {

// What the agent is asked: the client's target (or its sealed envelope), who asks, and the
// client's token policy. A plain function: see the g++ 12 note in transport/mux/mux_internal.hpp.
transport::open_request forwarded_request(const gateway::client_context& c, const transport::open_request& req) {
  auto r = transport::make_open_request(req.dest, c.id, req.envelope);
  r.groups = c.groups;
  r.policy = c.policy_json;
  return r;
}

// The gateway's check of a client's token policy on a visible destination. It cannot
// resolve names (the agent's DNS decides), so names meet the domain rules here and the
// agent checks the addresses. Returns the denying rule, or nullopt.
std::optional<std::string> check_client_policy(const gateway::client_context& c, const proto::target& dest) {
  acl::query q;
  q.port = dest.port;
  q.protocol = dest.protocol;
  q.client = c.name;
  q.groups = c.groups;
  q.now = std::chrono::system_clock::now();
  if (auto a = acl::parse_ip_literal(dest.host)) {
    auto d = acl::check_address(*c.policy, q, *a);
    if (d.act == acl::action::deny) return d.reason;
    return std::nullopt;
  }
  q.host = dest.host;
  if (auto d = acl::check_name(*c.policy, q)) return d->reason;
  return std::nullopt;
}

}  // namespace

std::shared_ptr<const gateway::client_context> gateway::make_client_context(const token::claims& c) {
  auto ctx = std::make_shared<client_context>();
  ctx->id = identity(c);
  ctx->name = c.name;
  ctx->groups = c.groups;
  ctx->policy_json = c.policy_json;
  if (!c.policy_json.empty()) {
    auto p = acl::policy_from_json(c.policy_json);
    if (p) {
      ctx->policy = std::move(*p);
    } else {
      // Signed by us, so this is a token tool bug; deny everything rather than nothing.
      spdlog::error("client {}: its token's policy cannot be read ({}); denying all its streams", ctx->id, p.error());
      ctx->policy = acl::policy{};
    }
  }
  return ctx;
}

awaitable<void> gateway::serve_agent(std::shared_ptr<transport::session> s, token::claims c, std::string address) {
  auto id = identity(c);
  if (auto it = agents_.find(id); it != agents_.end() && it->second.session != s) {
    spdlog::warn("agent {} from {} replaces the session from {}", id, address, it->second.address);
    it->second.session->close(proto::goaway_code::replaced, "replaced by a newer session of '" + id + "' from " + address);
  }
  agents_[id] = peer_entry{s, c, address, std::chrono::system_clock::now()};
  spdlog::info("agent {} online from {} ({})", id, address, s->transport_name());
  // Agents do not open streams towards the gateway (yet): refuse politely.
  while (true) {
    auto in = co_await s->accept();
    if (!in) {
      break;
    }
    (*in)->reject(errc::unsupported, "agents cannot open streams");
  }
  co_await s->wait_closed();
  if (auto it = agents_.find(id); it != agents_.end() && it->second.session == s) {
    agents_.erase(it);
  }
  spdlog::info("agent {} offline: {}", id, s->closed_by().message);
}

awaitable<void> gateway::serve_client(std::shared_ptr<transport::session> s, token::claims c, std::string address) {
  auto id = identity(c);
  auto ctx = make_client_context(c);
  spdlog::info("client {} connected from {} ({}){}", id, address, s->transport_name(),
               ctx->policy_json.empty() ? "" : ", with a token policy");
  while (true) {
    auto in = co_await s->accept();
    if (!in) {
      break;
    }
    asio::co_spawn(io_, relay_stream(ctx, std::move(*in)), asio::detached);
  }
  co_await s->wait_closed();
  spdlog::info("client {} disconnected: {}", id, s->closed_by().message);
}

// A spliced stream pair lives as long as the splice, and so does the frame running it:
// relay_stream keeps the two streams and the log line's words; the policy check, the
// agent lookup and the open (and the client's OPEN request itself) are in open_pair(),
// whose frame is gone once the pair is up.
awaitable<void> gateway::relay_stream(std::shared_ptr<const client_context> client,
                                      std::unique_ptr<transport::incoming_stream> in) {
  auto p = co_await open_pair(std::move(client), std::move(in));
  if (!p) {
    co_return;
  }
  auto st = co_await transport::splice_answering(*p->client, *p->agent);
  if (st.refused) {
    spdlog::debug("stream {} {}: refused: {} {}", p->client->id(), p->what, st.error.message(), st.detail);
    co_return;
  }
  spdlog::debug("stream {} {} closed: up {} B, down {} B, {} ms{}", p->client->id(), p->what, st.to_stream,
                st.from_stream, std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - p->started).count(),
                st.error ? ", " + st.error.message() : "");
}

awaitable<std::optional<gateway::stream_pair>> gateway::open_pair(std::shared_ptr<const client_context> client,
                                                                  std::unique_ptr<transport::incoming_stream> in) {
  const auto& req = in->request();
  const auto& client_id = client->id;
  if (client->policy && req.envelope.empty()) {
    if (auto why = check_client_policy(*client, req.dest)) {
      spdlog::info("client {} -> {} {}: denied by its token policy: {}", client_id, req.peer,
                   host_port{req.dest.host, req.dest.port}.to_string(), *why);
      in->reject(errc::denied, "denied by your token's policy: " + *why);
      co_return std::nullopt;
    }
  }
  auto tenant = client_id.substr(0, client_id.find('/'));
  auto key = tenant + "/" + req.peer;
  auto it = agents_.find(key);
  if (it == agents_.end() || !it->second.session->is_open() || it->second.session->is_draining()) {
    spdlog::debug("client {}: agent '{}' not online", client_id, req.peer);
    in->reject(errc::no_agent, "agent '" + req.peer + "' is not online");
    co_return std::nullopt;
  }
  auto agent = it->second.session;
  auto started = clock::now();
  auto out = co_await agent->open_early(forwarded_request(*client, req), agent_open_timeout);
  if (!out.stream) {
    spdlog::debug("client {} -> {}: cannot open: {} {}", client_id, req.peer, out.error.message(), out.message);
    in->reject(to_wire_code(out.error), out.message.empty() ? out.error.message() : out.message);
    co_return std::nullopt;
  }
  auto target = req.envelope.empty() ? host_port{req.dest.host, req.dest.port}.to_string() : "(end-to-end)";
  auto what = client_id + " -> " + req.peer + " " + target;
  auto cs = in->defer();
  co_return stream_pair{std::move(cs), std::move(out.stream), std::move(what), started};
}

void gateway::session_ended() {
  sessions_changed_.notify();
}

void gateway::shutdown(std::function<void()> on_done) {
  if (shutting_down_) {
    return;
  }
  shutting_down_ = true;
  if (quic_) {
    quic_->stop();
  }
  if (listener_) {
    listener_->stop();
  }
  spdlog::info("shutting down: draining {} sessions (up to {} ms)", sessions_.size(), cfg_.drain_timeout.count());
  for (auto& s : sessions_) {
    s->drain(proto::goaway_code::normal, "gateway shutting down");
  }
  asio::co_spawn(io_, [this, on_done]() -> awaitable<void> {
    bool expired = false;
    watchdog wd(io_.get_executor(), cfg_.drain_timeout, [this, &expired] {
      expired = true;
      sessions_changed_.notify();
    });
    while (!sessions_.empty() && !expired) {
      co_await sessions_changed_.wait();
    }
    if (!sessions_.empty()) {
      spdlog::warn("drain deadline passed; closing {} sessions", sessions_.size());
      auto all = sessions_;
      for (auto& s : all) {
        s->close(proto::goaway_code::normal, "gateway shutting down");
      }
    }
    on_done();
  }, asio::detached);
}

}  // namespace nl::gateway
