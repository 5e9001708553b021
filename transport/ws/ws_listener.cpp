#include "transport/ws/ws_listener.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "common/async.hpp"
#include "common/log.hpp"
#include "common/units.hpp"
#include "transport/address_quota.hpp"
#include "transport/ws/ws_channel.hpp"

namespace nl::transport::ws {
namespace {

namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

// Limits for what a not-yet-authenticated peer may make us hold.
constexpr std::uint32_t max_header_bytes = 16 * 1024;
constexpr std::uint64_t max_body_bytes = 4 * 1024;
constexpr int max_requests_per_connection = 100;

std::string endpoint_text(const tcp::endpoint& ep) {
  return host_port{ep.address().to_string(), ep.port()}.to_string();
}

class listener_impl final : public listener {
public:
  listener_impl(asio::any_io_executor ex, listener_options o, request_handler& h)
      : ex_(ex),
        opts_(std::move(o)),
        handler_(h),
        acceptor_(ex),
        ctx_(ssl::context::tls_server),
        pending_(opts_.max_pending_per_address) {}

  std::string init() {
    auto hp = parse_host_port(opts_.listen);
    if (!hp) {
      return "listen address '" + opts_.listen + "' is not host:port";
    }
    error_code ec;
    asio::ip::address addr;
    if (hp->host.empty() || hp->host == "*") {
      addr = asio::ip::address_v4::any();
    } else {
      addr = asio::ip::make_address(hp->host, ec);
      if (ec) {
        tcp::resolver r(ex_);
        auto res = r.resolve(hp->host, std::to_string(hp->port), ec);
        if (ec || res.empty()) {
          return "cannot resolve listen host '" + hp->host + "'";
        }
        addr = res.begin()->endpoint().address();
      }
    }
    tcp::endpoint ep(addr, hp->port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return "cannot listen on " + endpoint_text(ep) + ": " + ec.message();
    }
    if (opts_.cert_file.empty() != opts_.key_file.empty()) {
      return "TLS needs both a certificate and a key file";
    }
    tls_ = !opts_.cert_file.empty();
    if (tls_) {
      ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      set_cipher_preference(ctx_, true);
      ctx_.use_certificate_chain_file(opts_.cert_file, ec);
      if (ec) {
        return "cannot load certificate " + opts_.cert_file + ": " + ec.message();
      }
      ctx_.use_private_key_file(opts_.key_file, ssl::context::pem, ec);
      if (ec) {
        return "cannot load private key " + opts_.key_file + ": " + ec.message();
      }
    }
    return {};
  }

  void start() override {
    asio::co_spawn(ex_, accept_loop(), asio::detached);
  }

  void stop() override {
    error_code ec;
    acceptor_.close(ec);
  }

  tcp::endpoint local_endpoint() const override {
    error_code ec;
    return acceptor_.local_endpoint(ec);
  }
  bool tls() const override { return tls_; }

private:
  awaitable<void> accept_loop() {
    while (acceptor_.is_open()) {
      error_code ec;
      tcp::socket sock(ex_);
      co_await acceptor_.async_accept(sock, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
          break;
        }
        spdlog::warn("accept failed: {}", ec.message());
        if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
          co_await sleep_for(std::chrono::milliseconds(100));  // let connections close
        }
        continue;
      }
      if (pending_.total() >= opts_.max_pending) {
        shed(sock);
        continue;
      }
      auto peer = sock.remote_endpoint(ec);
      if (ec) {
        sock.close(ec);  // gone already
        continue;
      }
      if (!pending_.try_take(peer.address())) {
        shed_source(sock, peer.address());
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(ex_, serve_connection(std::move(sock), peer), [this, from = peer.address()](std::exception_ptr e) {
        pending_.give_back(from);
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            spdlog::error("connection handler failed: {}", x.what());
          }
        }
      });
    }
  }

  // Closes a connection over max_pending at once; says so at most every 10 s, with a count.
  void shed(tcp::socket& sock) {
    error_code ec;
    sock.close(ec);
    if (auto n = shed_.note()) {
      spdlog::warn("{} connections being set up at once (max_pending_connections); closed {} new ones "
                   "since the last such warning",
                   pending_.total(), n);
    }
  }

  // The same for a connection over max_pending_per_address, naming the address.
  void shed_source(tcp::socket& sock, const asio::ip::address& from) {
    error_code ec;
    sock.close(ec);
    if (auto n = shed_source_.note()) {
      spdlog::warn("{} connections being set up at once from {} (max_pending_per_address); closed {} new ones "
                   "over that cap since the last such warning",
                   pending_.held(from), from.to_string(), n);
    }
  }

  awaitable<void> serve_connection(tcp::socket sock, tcp::endpoint peer) {
    error_code ec;
    std::string remote = endpoint_text(peer);
    tcp_stream stream(std::move(sock));
    stream.expires_after(opts_.handshake_timeout);
    if (!tls_) {
      co_await serve_http(std::move(stream), remote);
      co_return;
    }
    tls_stream tls(std::move(stream), ctx_);
    tls.expires_after(opts_.handshake_timeout);
    ec = co_await tls.handshake(tls_stream::role::server);
    if (ec) {
      spdlog::debug("TLS handshake with {} failed: {}", remote, ec.message());
      co_return;
    }
    co_await serve_http(std::move(tls), remote);
  }

  template <class Stream>
  awaitable<void> serve_http(Stream stream, std::string remote) {
    beast::flat_buffer buf;
    for (int n = 0; n < max_requests_per_connection; ++n) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(max_header_bytes);
      parser.body_limit(max_body_bytes);
      error_code ec;
      co_await http::async_read(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout) {
          http_response r{400, "nl: malformed HTTP request: " + ec.message() + "\n"};
          co_await write_response(stream, r, 11, false);
        }
        co_return;
      }
      auto req = parser.release();
      http_request_info info;
      info.method = std::string(req.method_string());
      info.target = std::string(req.target());
      info.host = std::string(req[http::field::host]);
      info.authorization = std::string(req[http::field::authorization]);
      info.x_forwarded_for = std::string(req["X-Forwarded-For"]);
      info.x_forwarded_proto = std::string(req["X-Forwarded-Proto"]);
      info.subprotocols = std::string(req[http::field::sec_websocket_protocol]);
      info.remote = remote;
      info.tls = tls_;
      info.websocket = websocket::is_upgrade(req);
      auto decision = handler_.on_request(info);
      if (auto* r = std::get_if<http_response>(&decision)) {
        bool keep = req.keep_alive() && !info.websocket;
        co_await write_response(stream, *r, req.version(), keep);
        if (!keep) {
          co_return;
        }
        beast::get_lowest_layer(stream).expires_after(opts_.handshake_timeout);
        continue;
      }
      auto& up = std::get<upgrade_accept>(decision);
      websocket::stream<Stream> ws(std::move(stream));
      tune(ws);
      ws.set_option(websocket::stream_base::decorator([early = up.mux.early_data](websocket::response_type& res) {
        res.set(http::field::server, "nl-gateway");
        res.set(http::field::sec_websocket_protocol, early ? subprotocol_early : subprotocol);
      }));
      co_await ws.async_accept(req, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        spdlog::debug("WebSocket accept from {} failed: {}", remote, ec.message());
        co_return;
      }
      auto ch = std::make_unique<ws_channel<Stream>>(std::move(ws), tls_ ? "wss" : "ws", remote);
      up.on_session(make_mux_session(std::move(ch), std::move(up.mux)));
      co_return;
    }
  }

  template <class Stream>
  awaitable<void> write_response(Stream& stream, const http_response& r, unsigned version, bool keep) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "nl-gateway");
    res.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) {
      res.set(k, v);
    }
    res.keep_alive(keep);
    res.body() = r.body;
    res.prepare_payload();
    error_code ec;
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
  }

  asio::any_io_executor ex_;
  listener_options opts_;
  request_handler& handler_;
  tcp::acceptor acceptor_;
  ssl::context ctx_;
  bool tls_ = false;
  // serve_connection coroutines running (not yet a session), by source address
  address_quota pending_;
  log_throttle shed_{std::chrono::seconds(10)};         // connections closed for max_pending
  log_throttle shed_source_{std::chrono::seconds(10)};  // closed for max_pending_per_address
};

}  // namespace

std::expected<std::unique_ptr<listener>, std::string> listener::create(asio::any_io_executor ex,
                                                                       listener_options opts,
                                                                       request_handler& handler) {
  auto l = std::make_unique<listener_impl>(ex, std::move(opts), handler);
  if (auto err = l->init(); !err.empty()) {
    return std::unexpected(err);
  }
  return l;
}

}  // namespace nl::transport::ws
