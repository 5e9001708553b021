#include "client/client.hpp"

#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "transport/quic/link_quic.hpp"

#include "common/units.hpp"
#include "transport/relay.hpp"

namespace nl::client {
namespace {

using boost::asio::ip::tcp;

std::string text(const proto::target& t) { return host_port{t.host, t.port}.to_string(); }

}  // namespace

client::client(boost::asio::io_context& io, config::client_config cfg, std::string token)
    : io_(io),
      cfg_(std::move(cfg)),
      token_(std::move(token)),
      link_(io.get_executor(), transport::quic::link_options_for(cfg_.peer, "/v1/client", token_)),
      link_ended_(io.get_executor()) {}

void client::start_link() {
  asio::co_spawn(io_, link_.run([](std::shared_ptr<transport::session> s) -> awaitable<void> {
    co_await s->wait_closed();
  }), [this](std::exception_ptr e, transport::link_result r) {
    if (e) {
      r = {transport::link_end::stopped, "internal error"};
    }
    link_result_ = r;
    link_.stop();  // wakes anyone waiting for a session: none will come
    link_ended_.notify();
  });
}

int client::exit_code_for_link() const {
  if (!link_result_) return 0;
  switch (link_result_->end) {
    case transport::link_end::stopped: return 0;
    case transport::link_end::replaced: return 1;
    case transport::link_end::auth_failed:
    case transport::link_end::revoked: return 3;
  }
  return 1;
}

void client::stop() {
  stopping_ = true;
  for (auto& a : acceptors_) {
    error_code ec;
    a->close(ec);
  }
  link_ended_.notify();  // serve_forever() closes the session gracefully
  if (piping_) {
    link_.stop();  // connect: abort the stream, the user asked to quit
  }
}

std::string client::init_e2e() {
  std::optional<std::string> phrase;
  if (!cfg_.e2e.passphrase_file.empty()) {
    std::ifstream f(cfg_.e2e.passphrase_file);
    std::string line;
    if (!f || !std::getline(f, line) || line.empty()) {
      return cfg_.e2e.passphrase_file + ": cannot read the e2e passphrase (first line); create the file or remove "
                                        "e2e.passphrase_file";
    }
    phrase = line;
  }
  for (const auto& [name, text] : cfg_.e2e.pins) {
    auto k = e2e::decode_public_key(text);
    if (!k) {
      return "the pinned key of agent '" + name + "' is not a key as printed by `nl-agent key` (nl1:...)";
    }
    transport::e2e_peer p;
    p.public_key = *k;
    if (phrase) {
      p.psk = e2e::derive_psk(*phrase, *k);
    }
    pins_[name] = p;
  }
  return {};
}

awaitable<transport::open_outcome> client::open(const std::string& agent, const proto::target& dest) {
  auto s = co_await link_.get(cfg_.peer.connect_timeout);
  if (!s) {
    co_return transport::open_outcome{nullptr, make_error_code(errc::not_connected),
                                      link_result_ ? link_result_->message : "no session to the gateway"};
  }
  // The far side answers within its own dial timeout; allow for it plus the round trip.
  auto timeout = cfg_.peer.connect_timeout + std::chrono::seconds(20);
  if (auto pin = pins_.find(agent); pin != pins_.end()) {
    co_return co_await transport::open_secure(*s, agent, dest, pin->second, timeout);
  }
  co_return co_await s->open(transport::make_open_request(dest, agent), timeout);
}

awaitable<client::piped_stream> client::open_piped(const std::string& agent, const proto::target& dest) {
  if (pins_.contains(agent) || dest.protocol == proto::transport_protocol::udp) {
    auto out = co_await open(agent, dest);
    co_return answered(std::move(out));
  }
  piped_stream p;
  auto s = co_await link_.get(cfg_.peer.connect_timeout);
  if (!s) {
    p.error = make_error_code(errc::not_connected);
    p.message = link_result_ ? link_result_->message : "no session to the gateway";
    co_return p;
  }
  auto out = co_await s->open_early(transport::make_open_request(dest, agent),
                                    cfg_.peer.connect_timeout + std::chrono::seconds(20));
  p.opening = out.stream.get();
  p.stream = std::move(out.stream);
  p.error = out.error;
  p.message = std::move(out.message);
  co_return p;
}

client::piped_stream client::answered(transport::open_outcome o) {
  piped_stream p;
  p.stream = std::move(o.stream);
  p.error = o.error;
  p.message = std::move(o.message);
  return p;
}

awaitable<transport::open_answer> client::verdict(const piped_stream& p) {
  if (!p.opening) {
    co_return transport::open_answer{};
  }
  co_return co_await p.opening->answer();
}

awaitable<int> client::serve_forever() {
  while (!link_result_ && !stopping_) {
    co_await link_ended_.wait();
  }
  co_await link_.shutdown();
  co_return exit_code_for_link();
}

// ---- list ----
awaitable<int> client::list(bool json) {
  auto o = transport::link_options_from(cfg_.peer, "/v1/client", token_);
  auto r = co_await transport::ws::http_get(o.dial, "/v1/agents");
  if (!r) {
    std::cerr << "nl-client: " << r.error().message << "\n";
    co_return 1;
  }
  if (r->status != 200) {
    std::cerr << "nl-client: gateway answered " << r->status << ": "
              << (r->error_header.empty() ? r->body : r->error_header) << "\n";
    co_return r->status == 401 || r->status == 403 ? 3 : 1;
  }
  if (json) {
    std::cout << r->body;
    co_return 0;
  }
  auto arr = nlohmann::json::parse(r->body, nullptr, false);
  if (!arr.is_array()) {
    std::cerr << "nl-client: unexpected answer from the gateway\n";
    co_return 1;
  }
  std::printf("%-24s %-22s %-28s %-6s %s\n", "AGENT", "ONLINE SINCE", "ADDRESS", "VIA", "STREAMS");
  for (auto& a : arr) {
    std::printf("%-24s %-22s %-28s %-6s %s\n", a.value("name", "?").c_str(), a.value("online_since", "?").c_str(),
                a.value("address", "?").c_str(), a.value("transport", "?").c_str(),
                std::to_string(a.value("streams", 0)).c_str());
  }
  if (arr.empty()) {
    std::printf("(no agents online for this tenant)\n");
  }
  co_return 0;
}

// ---- local listeners ----
tcp::acceptor* client::listen_on(const asio::ip::address& bind, std::uint16_t port) {
  auto acc = std::make_unique<tcp::acceptor>(io_);
  tcp::endpoint ep(bind, port);
  error_code ec;
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "nl-client: cannot listen on " << host_port{bind.to_string(), port}.to_string() << ": "
              << ec.message() << "\n";
    return nullptr;
  }
  acceptors_.push_back(std::move(acc));
  return acceptors_.back().get();
}

void client::serve_acceptor(tcp::acceptor& acc, std::function<awaitable<void>(tcp::socket)> handle) {
  asio::co_spawn(io_, [this, &acc, handle = std::move(handle)]() -> awaitable<void> {
    while (acc.is_open()) {
      error_code ec;
      tcp::socket sock(io_);
      co_await acc.async_accept(sock, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acc.is_open()) break;
        if (ec == asio::error::no_descriptors) co_await sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io_, handle(std::move(sock)), asio::detached);
    }
  }, asio::detached);
}

// ---- forward (UDP forwards: udp.cpp) ----
awaitable<void> client::forward_one(tcp::socket sock, std::string agent, proto::target dest) {
  auto out = co_await open_piped(agent, dest);
  auto refused = [&](const error_code& ec, const std::string& msg) {
    spdlog::warn("forward to {} via {}: {}{}", text(dest), agent, ec.message(), msg.empty() ? "" : ": " + msg);
  };
  if (!out.stream) {
    refused(out.error, out.message);
    co_return;  // closing the socket tells the local application
  }
  auto st = co_await transport::relay(*out.stream, sock);
  if (auto v = co_await verdict(out); v.error) {
    refused(v.error, v.message);  // the relay ended when the refusal came
    co_return;
  }
  spdlog::debug("forward stream {} to {} closed: up {} B, down {} B", out.stream->id(), text(dest), st.to_stream,
                st.from_stream);
}

}  // namespace nl::client
