// UDP through nl-client: `forward -U` (a local UDP port to one target), SOCKS5 UDP
// ASSOCIATE (RFC 1928 §7) and `connect --udp`. Each flow (local source, destination) is
// one datagram stream to the agent (transport/datagram.hpp). Flows close after
// udp.idle_timeout without a datagram either way; at most udp.max_flows at once per front
// end; each flow queues at most flow_queue_bytes towards the agent and drops beyond that,
// as a full UDP socket buffer would.
#include <utility>

#include <iostream>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "client/client.hpp"
#include "common/units.hpp"
#include "proto/socks5.hpp"
#include "transport/datagram.hpp"
#include "transport/relay.hpp"

namespace nl::client {

using boost::asio::ip::tcp;
using boost::asio::ip::udp;

namespace {

constexpr std::size_t flow_queue_bytes = 256 * 1024;

std::string text(const proto::target& t) { return "udp:" + host_port{t.host, t.port}.to_string(); }

std::string endpoint_text(const udp::endpoint& e) { return host_port{e.address().to_string(), e.port()}.to_string(); }

// The address a forward (-L or -U) binds to; says why and gives nullopt when it is not an IP.
std::optional<asio::ip::address> bind_address(const config::forward_spec& spec) {
  error_code ec;
  auto addr = asio::ip::make_address(spec.bind, ec);
  if (ec) {
    std::cerr << "nl-client: forward bind address '" << spec.bind << "' is not an IP address\n";
    return std::nullopt;
  }
  return addr;
}

// Where a forward's connections or datagrams go. A plain function: the target is then not
// brace-initialised in a coroutine frame (g++ 12, see transport/mux/mux_internal.hpp).
proto::target forward_target(const config::forward_spec& spec, proto::transport_protocol protocol) {
  proto::target dest;
  dest.host = spec.host;
  dest.port = spec.host_port;
  dest.protocol = protocol;
  return dest;
}

}  // namespace

// One local UDP socket and its flows.
class udp_front : public std::enable_shared_from_this<udp_front> {
public:
  enum class mode { forward, socks };

  udp_front(client& c, udp::socket sock, std::string agent, mode m)
      : c_(c), sock_(std::move(sock)), agent_(std::move(agent)), mode_(m) {}

  // forward: every datagram goes to `dest`.
  void set_destination(proto::target dest) { dest_ = std::move(dest); }
  // socks: only datagrams from this address (and port, once known) are relayed.
  void set_socks_client(udp::endpoint hint) { socks_client_ = hint; }

  awaitable<void> run() {
    auto self = shared_from_this();
    std::vector<std::byte> buf(proto::max_datagram + 512);
    for (;;) {
      udp::endpoint src;
      error_code ec;
      auto n = co_await sock_.async_receive_from(asio::buffer(buf), src, asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::connection_refused) {
        continue;
      }
      if (ec) {
        break;
      }
      on_datagram(src, std::span<const std::byte>(buf.data(), n));
    }
    stop();
  }

  void stop() {
    error_code ec;
    sock_.close(ec);
    auto flows = std::move(flows_);
    for (auto& [key, f] : flows) {
      end_flow(*f, errc::aborted, "UDP association closed");
    }
  }

private:
  struct flow {
    explicit flow(const asio::any_io_executor& ex) : dgrams(ex, flow_queue_bytes) {}
    std::string key;
    udp::endpoint src;
    proto::target dest;
    transport::datagram_flow dgrams;
  };

  void on_datagram(const udp::endpoint& src, std::span<const std::byte> d) {
    proto::target dest;
    std::span<const std::byte> payload = d;
    if (mode_ == mode::socks) {
      // Only our SOCKS client may use the association (RFC 1928: "MUST drop" others).
      if (src.address() != socks_client_.address() ||
          (socks_client_.port() != 0 && src.port() != socks_client_.port())) {
        return;
      }
      socks_client_.port(src.port());
      auto h = proto::socks5::parse_udp_header(d);
      if (h.status != proto::parse_status::ok) {
        spdlog::debug("socks udp: dropped a datagram: {}", h.error ? h.error : "malformed header");
        return;
      }
      dest = h.dest;
      payload = d.subspan(h.payload_offset);
    } else {
      dest = dest_;
    }
    dest.protocol = proto::transport_protocol::udp;
    auto key = endpoint_text(src) + ">" + host_port{dest.host, dest.port}.to_string();
    auto it = flows_.find(key);
    if (it != flows_.end() && it->second->dgrams.ended()) {
      // The far side closed this flow and its coroutine has not yet erased it: the datagram
      // starts a new flow rather than being dropped.
      flows_.erase(it);
      it = flows_.end();
    }
    if (it == flows_.end()) {
      if (flows_.size() >= c_.cfg_.udp.max_flows) {
        spdlog::warn("udp: {} flows open (udp.max_flows); dropped a datagram from {} to {}", flows_.size(),
                     endpoint_text(src), text(dest));
        return;
      }
      auto f = std::make_shared<flow>(sock_.get_executor());
      f->key = key;
      f->src = src;
      f->dest = dest;
      it = flows_.emplace(key, f).first;
      asio::co_spawn(sock_.get_executor(), run_flow(f), asio::detached);
    }
    // False when the agent side is slower than the sender: the datagram is dropped, as UDP does.
    it->second->dgrams.push(payload);
  }

  void end_flow(flow& f, errc code, std::string_view why) { f.dgrams.end(code, why); }

  void deliver(flow& f, std::span<const std::byte> payload) {
    error_code ec;
    if (mode_ == mode::socks) {
      std::vector<std::byte> out;
      out.reserve(payload.size() + 262);
      if (!proto::socks5::append_udp_header(out, f.dest)) {
        return;
      }
      out.insert(out.end(), payload.begin(), payload.end());
      sock_.send_to(asio::buffer(out), f.src, 0, ec);
    } else {
      sock_.send_to(asio::buffer(payload.data(), payload.size()), f.src, 0, ec);
    }
    // would_block: the local application does not read fast enough; the datagram is lost.
  }

  awaitable<void> run_flow(std::shared_ptr<flow> f) {
    auto self = shared_from_this();
    auto out = co_await c_.open(agent_, f->dest);
    if (!out.stream) {
      spdlog::info("udp {} -> {} via {}: {}{}", endpoint_text(f->src), text(f->dest), agent_,
                   describe(to_wire_code(out.error)), out.message.empty() ? "" : ": " + out.message);
      erase(f);
      co_return;
    }
    spdlog::debug("udp flow {} -> {} via {} open", endpoint_text(f->src), text(f->dest), agent_);
    auto& s = *out.stream;  // owned by f->dgrams until f is erased
    const auto limit = c_.cfg_.udp.idle_timeout;
    // Named, not a temporary in the co_await expression: g++ 12 destroys such a lambda twice,
    // which here dropped a reference to f (ASan: the flow freed while still in use).
    auto to_app = [this, f](std::span<const std::byte> d) { deliver(*f, d); };
    auto why = co_await f->dgrams.run(std::move(out.stream), to_app, limit, [&] {
      spdlog::debug("udp flow {} -> {} idle for {} ms: closed", endpoint_text(f->src), text(f->dest), limit.count());
    });
    if (why && why != make_error_code(errc::timeout)) {
      spdlog::debug("udp flow {} -> {} ended: {}{}", endpoint_text(f->src), text(f->dest), why.message(),
                    s.error_message().empty() ? "" : ": " + s.error_message());
    }
    spdlog::debug("udp flow {} -> {} closed", endpoint_text(f->src), text(f->dest));
    erase(f);
  }

  void erase(const std::shared_ptr<flow>& f) {
    if (auto it = flows_.find(f->key); it != flows_.end() && it->second == f) {
      flows_.erase(it);
    }
  }

  client& c_;
  udp::socket sock_;
  std::string agent_;
  mode mode_;
  proto::target dest_;
  udp::endpoint socks_client_;
  std::map<std::string, std::shared_ptr<flow>> flows_;
};

awaitable<int> client::forward(std::string agent, std::vector<config::forward_spec> specs,
                               std::vector<config::forward_spec> udp_specs) {
  for (auto& spec : specs) {
    auto addr = bind_address(spec);
    if (!addr) {
      co_return 2;
    }
    auto* acc = listen_on(*addr, spec.port);
    if (!acc) {
      co_return 1;
    }
    auto local = acc->local_endpoint();
    spdlog::info("forward listening on {} -> {} via {}", host_port{local.address().to_string(), local.port()}.to_string(),
                 host_port{spec.host, spec.host_port}.to_string(), agent);
    auto dest = forward_target(spec, proto::transport_protocol::tcp);
    serve_acceptor(*acc, [this, agent, dest](tcp::socket sock) { return forward_one(std::move(sock), agent, dest); });
  }
  std::vector<std::shared_ptr<udp_front>> fronts;
  for (auto& spec : udp_specs) {
    auto addr = bind_address(spec);
    if (!addr) {
      co_return 2;
    }
    error_code ec;
    udp::socket sock(io_);
    udp::endpoint ep(*addr, spec.port);
    sock.open(ep.protocol(), ec);
    if (!ec) sock.bind(ep, ec);
    if (ec) {
      std::cerr << "nl-client: cannot listen on udp " << host_port{spec.bind, spec.port}.to_string() << ": "
                << ec.message() << "\n";
      co_return 1;
    }
    sock.non_blocking(true, ec);
    auto local = sock.local_endpoint();
    spdlog::info("forward listening on udp {} -> {} via {}", endpoint_text(local),
                 host_port{spec.host, spec.host_port}.to_string(), agent);
    auto f = std::make_shared<udp_front>(*this, std::move(sock), agent, udp_front::mode::forward);
    f->set_destination(forward_target(spec, proto::transport_protocol::udp));
    asio::co_spawn(io_, f->run(), asio::detached);
    fronts.push_back(f);
  }
  start_link();
  auto rc = co_await serve_forever();
  for (auto& f : fronts) {
    f->stop();
  }
  co_return rc;
}

// SOCKS5 UDP ASSOCIATE: the association lives as long as the TCP control connection.
awaitable<void> client::udp_associate(tcp::socket control, std::string agent, udp::endpoint client_hint) {
  error_code ec;
  auto local = control.local_endpoint(ec);
  auto peer = control.remote_endpoint(ec);
  if (ec) {
    co_return;
  }
  udp::socket sock(io_);
  udp::endpoint bind_ep(local.address(), 0);
  sock.open(bind_ep.protocol(), ec);
  if (!ec) sock.bind(bind_ep, ec);
  if (!ec) sock.non_blocking(true, ec);
  if (ec) {
    auto rep = proto::socks5::reply(proto::socks5::rep::general_failure);
    co_await asio::async_write(control, asio::buffer(rep), asio::redirect_error(use_awaitable, ec));
    co_return;
  }
  auto bound_udp = sock.local_endpoint();
  tcp::endpoint bound(bound_udp.address(), bound_udp.port());
  auto rep = proto::socks5::reply(proto::socks5::rep::succeeded, &bound);
  co_await asio::async_write(control, asio::buffer(rep), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return;
  }
  // The client said where it will send from; an unspecified address means "the control
  // connection's address", an unspecified port "whatever port it first uses".
  udp::endpoint expect(client_hint.address().is_unspecified() ? peer.address() : client_hint.address(),
                       client_hint.port());
  spdlog::debug("socks udp associate for {} on {}", endpoint_text(expect), endpoint_text(bound_udp));
  auto front = std::make_shared<udp_front>(*this, std::move(sock), agent, udp_front::mode::socks);
  front->set_socks_client(expect);
  asio::co_spawn(io_, front->run(), asio::detached);
  // Wait for the control connection to end (any bytes on it are ignored).
  std::array<std::byte, 256> sink;
  for (;;) {
    co_await control.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
  }
  front->stop();
}

// `connect --udp`: every read from stdin is one datagram; every datagram from the target is
// written to stdout. Ends when the flow is idle for udp.idle_timeout (after stdin's EOF too,
// so that late answers still arrive), or on an error.
awaitable<int> client::pipe_datagrams(transport::stream& s, proto::target dest) {
  asio::posix::stream_descriptor in(io_, ::dup(0));
  asio::posix::stream_descriptor out_fd(io_, 1);
  bool failed = false;
  bool done = false;
  auto last = clock::now();
  asio::steady_timer idle(io_);
  auto finish = [&] {
    done = true;
    error_code ec;
    in.close(ec);
    idle.cancel();
  };
  auto up = [&]() -> awaitable<void> {
    std::vector<std::byte> buf(proto::max_datagram);
    while (!done) {
      error_code ec;
      auto n = co_await in.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        break;  // EOF: keep listening for answers until the flow is idle
      }
      last = clock::now();
      if (co_await transport::write_datagram(s, std::span<const std::byte>(buf.data(), n))) {
        break;
      }
    }
  };
  auto down = [&]() -> awaitable<void> {
    transport::datagram_reader rd(s);
    for (;;) {
      auto d = co_await rd.next();
      if (!d) {
        if (!done && d.error() != make_error_code(errc::timeout)) {
          failed = true;
          std::cerr << "nl-client: flow to " << text(dest) << " reset: " << d.error().message()
                    << (s.error_message().empty() ? "" : ": " + s.error_message()) << "\n";
        }
        break;
      }
      if (!*d) {
        break;
      }
      last = clock::now();
      error_code ec;
      co_await asio::async_write(out_fd, (*d)->buffer(), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        break;
      }
    }
    finish();
  };
  co_await when_both(when_both(up(), down()), expire_when_idle(idle, last, cfg_.udp.idle_timeout, done, [&] {
    finish();
    s.reset(errc::timeout, "UDP flow idle");
  }));
  error_code ec;
  out_fd.close(ec);
  co_await link_.shutdown();
  co_return failed ? 1 : 0;
}

}  // namespace nl::client
