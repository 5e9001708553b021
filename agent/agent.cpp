#include "agent/agent.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "transport/quic/link_quic.hpp"

#include "transport/datagram.hpp"
#include "transport/first_reply.hpp"
#include "transport/relay.hpp"
#include "transport/secure_stream.hpp"

namespace nl::agent {
namespace {

using boost::asio::ip::tcp;
using boost::asio::ip::udp;

std::string describe_target(const proto::target& t) {
  auto s = host_port{t.host, t.port}.to_string();
  return t.protocol == proto::transport_protocol::udp ? "udp:" + s : s;
}

// The token name of "tenant/name".
std::string client_name(const std::string& peer) {
  auto slash = peer.find('/');
  return slash == std::string::npos ? peer : peer.substr(slash + 1);
}

acl::query make_query(const agent::asker& who, const proto::target& t, std::string_view name) {
  acl::query q;
  q.host = name;
  q.port = t.port;
  q.protocol = t.protocol;
  q.client = who.client;
  q.groups = who.groups;
  q.now = std::chrono::system_clock::now();
  return q;
}

// Connects `sock` to the first of `eps` that accepts, like asio::async_connect, with one
// difference: after a non-blocking connect() answers EINPROGRESS, poll() is asked once
// without waiting. To a target on the same host or LAN the handshake has usually completed
// by then (the SYN-ACK is processed as connect() releases the socket), and the relay can
// start without a round through the event loop: one wake-up fewer for every new stream.
// Ends with operation_aborted as soon as `sock` is closed under it (the dial deadline).
awaitable<boost::system::error_code> connect_any(tcp::socket& sock, const std::vector<tcp::endpoint>& eps) {
  using boost::system::error_code;
  error_code ec = asio::error::host_not_found;
  for (const auto& ep : eps) {
    error_code ignored;
    sock.close(ignored);
    sock.open(ep.protocol(), ec);
    if (!ec) sock.non_blocking(true, ec);
    if (ec) continue;
    if (::connect(sock.native_handle(), ep.data(), static_cast<socklen_t>(ep.size())) == 0) {
      co_return error_code{};
    }
    if (errno != EINPROGRESS) {
      ec = error_code(errno, asio::error::get_system_category());
      continue;
    }
    pollfd p{sock.native_handle(), POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1) {
      co_await sock.async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
      if (ec || !sock.is_open()) {
        co_return ec ? ec : error_code(asio::error::operation_aborted);
      }
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err == 0) {
      co_return error_code{};
    }
    ec = error_code(err, asio::error::get_system_category());
  }
  co_return ec;
}

}  // namespace

agent::agent(boost::asio::io_context& io, config::agent_config cfg, std::string token, e2e::static_keypair keys,
             std::optional<e2e::key> psk)
    : io_(io),
      cfg_(std::move(cfg)),
      keys_(keys),
      psk_(psk),
      link_(io.get_executor(), transport::quic::link_options_for(cfg_.peer, "/v1/agent", std::move(token))) {}

void agent::stop() { link_.stop(); }

awaitable<int> agent::run() {
  auto r = co_await link_.run([this](std::shared_ptr<transport::session> s) { return serve(std::move(s)); });
  switch (r.end) {
    case transport::link_end::stopped: co_return 0;
    case transport::link_end::replaced: co_return 4;  // distinct, so systemd does not restart a displaced twin
    case transport::link_end::auth_failed:
    case transport::link_end::revoked: co_return 3;
  }
  co_return 1;
}

awaitable<void> agent::serve(std::shared_ptr<transport::session> s) {
  while (true) {
    auto in = co_await s->accept();
    if (!in) {
      break;
    }
    asio::co_spawn(io_, handle(std::move(*in)), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          spdlog::error("stream handler failed: {}", x.what());
        }
      }
    });
  }
}

// The agent's policy is authoritative; the client's token policy (if any) narrows it.
acl::decision agent::judge(const asker& who, const proto::target& t, std::string_view name,
                           const asio::ip::address& a) const {
  auto q = make_query(who, t, name);
  auto d = acl::check_address(cfg_.policy, q, a);
  if (d.act == acl::action::allow && who.policy) {
    auto c = acl::check_address(*who.policy, q, a);
    if (c.act == acl::action::deny) {
      c.reason = "the client's token policy: " + c.reason;
      return c;
    }
  }
  return d;
}

std::expected<std::shared_ptr<const acl::policy>, std::string> agent::client_policy(const std::string& json) {
  if (auto it = client_policies_.find(json); it != client_policies_.end()) {
    return it->second;
  }
  auto p = acl::policy_from_json(json);
  if (!p) {
    return std::unexpected(p.error());
  }
  constexpr std::size_t max_cached = 64;  // distinct client policies kept parsed
  if (client_policies_.size() >= max_cached) {
    client_policies_.clear();
  }
  auto shared = std::make_shared<const acl::policy>(std::move(*p));
  client_policies_.emplace(json, shared);
  return shared;
}

awaitable<agent::resolution> agent::resolve(const asker& who, const proto::target& t) {
  resolution out;
  auto refuse = [&out](errc code, std::string msg) {
    out.code = code;
    out.message = std::move(msg);
    return std::move(out);
  };
  // Literal addresses in any spelling (decimal, octal, hex, short, IPv4-mapped IPv6) are
  // normalised first, so they meet the address rules and never reach the resolver.
  if (auto literal = acl::parse_ip_literal(t.host)) {
    auto d = judge(who, t, "", *literal);
    if (d.act == acl::action::deny) {
      co_return refuse(errc::denied, d.reason);
    }
    out.addresses.push_back(*literal);
    co_return std::move(out);
  }
  auto q = make_query(who, t, t.host);
  if (auto d = acl::check_name(cfg_.policy, q)) {
    co_return refuse(errc::denied, d->reason);
  }
  if (who.policy) {
    if (auto d = acl::check_name(*who.policy, q)) {
      co_return refuse(errc::denied, "the client's token policy: " + d->reason);
    }
  }
  auto ex = io_.get_executor();
  tcp::resolver resolver(ex);
  tcp::resolver::results_type res;
  error_code ec;
  {
    watchdog wd(ex, cfg_.dial_timeout, [&resolver] { resolver.cancel(); });
    res = co_await resolver.async_resolve(t.host, std::to_string(t.port), asio::redirect_error(use_awaitable, ec));
  }
  if (ec) {
    co_return refuse(ec == asio::error::operation_aborted ? errc::timeout : errc::dns_failure,
                     "cannot resolve " + t.host + ": " + ec.message());
  }
  // Only addresses the policy allows are ever used (DNS-rebinding safe).
  std::string first_denial;
  for (const auto& e : res) {
    auto a = acl::unmap(e.endpoint().address());
    auto d = judge(who, t, t.host, a);
    if (d.act == acl::action::allow) {
      if (std::find(out.addresses.begin(), out.addresses.end(), a) == out.addresses.end()) {
        out.addresses.push_back(a);
      }
    } else if (first_denial.empty()) {
      first_denial = d.reason + " (" + t.host + " resolves to " + a.to_string() + ")";
    }
  }
  if (out.addresses.empty()) {
    co_return refuse(errc::denied, first_denial);
  }
  co_return std::move(out);
}

awaitable<agent::dial_outcome> agent::dial(const asker& who, const proto::target& t) {
  auto ex = io_.get_executor();
  dial_outcome out{tcp::socket(ex), errc::ok, {}};
  auto fail_with = [&](errc code, std::string msg) {
    out.code = code;
    out.message = std::move(msg);
    return std::move(out);
  };
  auto where = describe_target(t);
  auto r = co_await resolve(who, t);
  if (r.code != errc::ok) {
    co_return fail_with(r.code, r.message);
  }
  std::vector<tcp::endpoint> endpoints;
  for (auto& a : r.addresses) {
    endpoints.emplace_back(a, t.port);
  }
  bool timed_out = false;
  error_code ec;
  {
    watchdog wd(ex, cfg_.dial_timeout, [&out, &timed_out] {
      timed_out = true;
      error_code ignored;
      out.socket.close(ignored);
    });
    ec = co_await connect_any(out.socket, endpoints);
  }
  if (timed_out) {
    co_return fail_with(errc::timeout, "connect to " + where + " timed out");
  }
  if (ec) {
    co_return fail_with(to_wire_code(ec), "connect to " + where + ": " + ec.message());
  }
  out.socket.set_option(tcp::no_delay(true), ec);
  co_return std::move(out);
}

// A TCP tunnel lives as long as its relay, and so does the frame of the coroutine running
// it: handle() keeps only the stream, the socket and the log line's words, and everything
// that leads there (e2e handshake, policy, resolve, connect, the OPEN request itself) runs
// in setup(), whose frame is gone once the tunnel is up.
awaitable<void> agent::handle(std::unique_ptr<transport::incoming_stream> in) {
  auto t = co_await setup(std::move(in));
  if (!t) {
    co_return;
  }
  auto st = co_await transport::relay(*t->stream, t->socket);
  spdlog::info("stream {} from {} to {} closed: up {} B, down {} B, {} ms{}", t->stream->id(), t->who, t->where,
               st.from_stream, st.to_stream,
               std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t->started).count(),
               st.error ? ", " + st.error.message() + (st.detail.empty() ? "" : ": " + st.detail) : "");
}

awaitable<std::optional<agent::tcp_tunnel>> agent::setup(std::unique_ptr<transport::incoming_stream> in) {
  const auto& req = in->request();
  auto who_text = req.peer.empty() ? std::string("?") : req.peer;
  std::optional<transport::secure_request> sec;
  proto::target dest;
  if (!req.envelope.empty()) {
    auto r = transport::read_secure_open(*in, keys_, psk_);
    if (!r) {
      spdlog::warn("stream {} from {}: end-to-end handshake failed: {}", in->id(), who_text, r.error());
      in->reject(errc::e2e_failed, r.error());
      co_return std::nullopt;
    }
    sec.emplace(std::move(*r));
    dest = sec->dest;
  } else {
    if (cfg_.e2e.require) {
      spdlog::info("stream {} from {} refused: not end-to-end encrypted (e2e required)", in->id(), who_text);
      in->reject(errc::denied, "this agent requires end-to-end encryption: pin its key (nl-agent key) in the client");
      co_return std::nullopt;
    }
    dest = req.dest;
  }
  auto refuse = [&](errc code, const std::string& msg) {
    if (sec) {
      transport::reject_secure(*in, *sec, code, msg);
    } else {
      in->reject(code, msg);
    }
  };
  // A plain stream that brought early data is answered with its first reply (one message
  // instead of two on the way back; see transport/first_reply.hpp).
  auto accept = [&] {
    return sec ? transport::accept_secure(*in, *sec) : transport::accept_with_first_reply(*in, io_.get_executor());
  };
  asker who;
  who.client = client_name(req.peer);
  who.groups = req.groups;
  if (!req.policy.empty()) {
    auto p = client_policy(req.policy);
    if (!p) {
      refuse(errc::denied, "the client's token policy cannot be read: " + p.error());
      co_return std::nullopt;
    }
    who.policy = std::move(*p);
  }
  auto where = describe_target(dest) + (sec ? " (e2e)" : "");
  auto started = clock::now();
  auto refused = [&](std::string_view kind, errc code, const std::string& msg) {
    spdlog::info("{} {} from {} to {} refused: {}: {}", kind, in->id(), who_text, where, describe(code), msg);
    refuse(code, msg);
  };

  if (dest.protocol == proto::transport_protocol::udp) {
    if (udp_flows_ >= cfg_.udp.max_flows) {
      refuse(errc::limit, "too many UDP flows on this agent (udp.max_flows = " + std::to_string(cfg_.udp.max_flows) + ")");
      co_return std::nullopt;
    }
    auto r = co_await resolve(who, dest);
    if (r.code != errc::ok) {
      refused("flow", r.code, r.message);
      co_return std::nullopt;
    }
    udp::endpoint target(r.addresses.front(), dest.port);
    udp::socket sock(io_);
    error_code ec;
    sock.open(target.protocol(), ec);
    if (!ec) sock.connect(target, ec);
    if (ec) {
      refuse(to_wire_code(ec), "udp to " + where + ": " + ec.message());
      co_return std::nullopt;
    }
    auto s = accept();
    spdlog::debug("flow {} from {} to {} open", s->id(), who_text, where);
    co_await serve_udp(std::move(s), std::move(sock));
    spdlog::info("flow from {} to {} closed after {} ms", who_text, where,
                 std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count());
    co_return std::nullopt;
  }

  auto d = co_await dial(who, dest);
  if (d.code != errc::ok) {
    refused("stream", d.code, d.message);
    co_return std::nullopt;
  }
  auto s = accept();
  spdlog::debug("stream {} from {} to {} open", s->id(), who_text, where);
  co_return tcp_tunnel{std::move(s), std::move(d.socket), std::move(who_text), std::move(where), started};
}

// Datagrams both ways until the client ends the flow, either side fails, or nothing moved
// for udp.idle_timeout.
awaitable<void> agent::serve_udp(std::unique_ptr<transport::stream> s, udp::socket sock) {
  ++udp_flows_;
  auto last = clock::now();
  bool done = false;
  bool client_done = false;
  asio::steady_timer idle(io_);
  auto finish = [&] {
    if (!done) {
      done = true;
      error_code ec;
      sock.close(ec);
      idle.cancel();
    }
  };
  auto up = [&]() -> awaitable<void> {
    transport::datagram_reader rd(*s);
    for (;;) {
      auto d = co_await rd.next();
      if (!d || !*d) {
        client_done = d.has_value();  // the client ended the flow (EOF), not an error
        break;
      }
      last = clock::now();
      error_code ec;
      sock.send(asio::buffer((*d)->data(), (*d)->size()), 0, ec);  // a full socket buffer drops, as UDP does
      if (ec && ec != asio::error::would_block && ec != asio::error::connection_refused) {
        s->reset(errc::aborted, "udp send failed: " + ec.message());
        break;
      }
    }
    finish();
  };
  auto down = [&]() -> awaitable<void> {
    std::vector<std::byte> buf(proto::max_datagram);
    for (;;) {
      error_code ec;
      auto n = co_await sock.async_receive(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::connection_refused) {
        continue;  // ICMP port unreachable from the target: UDP just loses the datagram
      }
      if (ec) {
        break;
      }
      last = clock::now();
      if (co_await transport::write_datagram(*s, std::span<const std::byte>(buf.data(), n))) {
        break;
      }
    }
    finish();
  };
  co_await when_both(when_both(up(), down()), expire_when_idle(idle, last, cfg_.udp.idle_timeout, done, [&] {
    s->reset(errc::timeout, "UDP flow idle for " + std::to_string(cfg_.udp.idle_timeout.count()) + " ms");
    finish();
  }));
  if (client_done) {
    co_await s->shutdown_send();
  } else {
    s->reset(errc::aborted, "flow closed");  // no-op when already reset
  }
  --udp_flows_;
}

}  // namespace nl::agent
