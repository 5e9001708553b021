#include "agent/agent.hpp"

#include <boost/asio/connect.hpp>
#include <spdlog/spdlog.h>

#include "acl/policy.hpp"
#include "transport/relay.hpp"

namespace nl::agent {
namespace {

using boost::asio::ip::tcp;

std::string describe_target(const proto::target& t) { return host_port{t.host, t.port}.to_string(); }

}  // namespace

agent::agent(boost::asio::io_context& io, config::agent_config cfg, std::string token)
    : io_(io), cfg_(std::move(cfg)), link_(io.get_executor(), transport::link_options_from(cfg_.peer, "/v1/agent", std::move(token))) {}

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

awaitable<agent::dial_outcome> agent::dial(const proto::target& t) {
  auto ex = io_.get_executor();
  dial_outcome out{tcp::socket(ex), errc::ok, {}};
  auto fail_with = [&](errc code, std::string msg) {
    out.code = code;
    out.message = std::move(msg);
    return std::move(out);
  };
  auto where = describe_target(t);
  error_code ec;
  auto literal = asio::ip::make_address(t.host, ec);
  std::vector<tcp::endpoint> endpoints;
  std::string first_denial;
  if (!ec) {
    auto d = acl::check_address(cfg_.policy, "", literal, t.port, t.protocol);
    if (d.act == acl::action::deny) {
      co_return fail_with(errc::denied, d.reason);
    }
    endpoints.emplace_back(literal, t.port);
  } else {
    if (auto d = acl::check_name(cfg_.policy, t.host, t.port, t.protocol)) {
      co_return fail_with(errc::denied, d->reason);
    }
    tcp::resolver resolver(ex);
    tcp::resolver::results_type res;
    {
      watchdog wd(ex, cfg_.dial_timeout, [&resolver] { resolver.cancel(); });
      res = co_await resolver.async_resolve(t.host, std::to_string(t.port), asio::redirect_error(use_awaitable, ec));
    }
    if (ec) {
      co_return fail_with(ec == asio::error::operation_aborted ? errc::timeout : errc::dns_failure,
                          "cannot resolve " + t.host + ": " + ec.message());
    }
    // Only addresses the policy allows are ever dialed (DNS-rebinding safe).
    for (const auto& e : res) {
      auto d = acl::check_address(cfg_.policy, t.host, e.endpoint().address(), t.port, t.protocol);
      if (d.act == acl::action::allow) {
        endpoints.push_back(e.endpoint());
      } else if (first_denial.empty()) {
        first_denial = d.reason + " (" + t.host + " resolves to " + e.endpoint().address().to_string() + ")";
      }
    }
    if (endpoints.empty()) {
      co_return fail_with(errc::denied, first_denial);
    }
  }
  bool timed_out = false;
  {
    watchdog wd(ex, cfg_.dial_timeout, [&out, &timed_out] {
      timed_out = true;
      error_code ignored;
      out.socket.close(ignored);
    });
    co_await asio::async_connect(out.socket, endpoints, asio::redirect_error(use_awaitable, ec));
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

awaitable<void> agent::handle(std::unique_ptr<transport::incoming_stream> in) {
  const auto req = in->request();
  auto who = req.peer.empty() ? std::string("?") : req.peer;
  if (!req.envelope.empty()) {
    in->reject(errc::unsupported, "end-to-end encryption is not configured on this agent");
    co_return;
  }
  if (req.dest.protocol != proto::transport_protocol::tcp) {
    in->reject(errc::unsupported, "UDP streams are not supported by this agent yet");
    co_return;
  }
  auto where = describe_target(req.dest);
  auto started = clock::now();
  auto d = co_await dial(req.dest);
  if (d.code != errc::ok) {
    spdlog::info("stream {} from {} to {} refused: {}: {}", in->id(), who, where, describe(d.code), d.message);
    in->reject(d.code, d.message);
    co_return;
  }
  auto s = in->accept();
  spdlog::debug("stream {} from {} to {} open", s->id(), who, where);
  auto st = co_await transport::relay(*s, d.socket);
  spdlog::info("stream {} from {} to {} closed: up {} B, down {} B, {} ms{}", s->id(), who, where, st.from_stream,
               st.to_stream, std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count(),
               st.error ? ", " + st.error.message() : "");
}

}  // namespace nl::agent
