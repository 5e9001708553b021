#include "transport/ws/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/async.hpp"
#include "transport/ws/ws_channel.hpp"

namespace nl::transport::ws {
namespace {

namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

std::string remote_of(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) {
    return "?";
  }
  return host_port{ep.address().to_string(), ep.port()}.to_string();
}

std::string ssl_error_text(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    auto reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return std::string("TLS: ") + (reason ? reason : ec.message().c_str());
  }
  return ec.message();
}

// Completes the WebSocket upgrade on `ws` and starts the mux session.
template <class Next>
awaitable<std::expected<dial_result, dial_error>> upgrade(websocket::stream<Next> ws,
                                                          const dial_options& o,
                                                          std::string remote) {
  tune(ws);
  ws.set_option(websocket::stream_base::decorator([&o](websocket::request_type& req) {
    req.set(http::field::user_agent, "nl/0.1");
    req.set(http::field::authorization, "Bearer " + o.token);
    req.set(http::field::sec_websocket_protocol, subprotocol_offer);
  }));
  websocket::response_type res;
  error_code ec;
  auto host = o.url.host;
  bool default_port = o.url.port == (o.url.tls ? 443 : 80);
  auto host_header = default_port ? (host.find(':') != std::string::npos ? "[" + host + "]" : host)
                                  : host_port{host, o.url.port}.to_string();
  co_await ws.async_handshake(res, host_header, o.url.prefix + o.endpoint,
                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    dial_error e;
    e.http_status = static_cast<int>(res.result_int());
    if (ec == websocket::error::upgrade_declined && e.http_status != 0) {
      // Only nl-gateway's own refusal (it always says why in X-NL-Error) is an
      // authentication verdict. A 401/403 from a proxy or CDN in front (a firewall rule, an
      // access gate) is a problem on the way that may pass: keep retrying.
      auto reason = res["X-NL-Error"];
      if (!reason.empty()) {
        e.message = std::string(reason);
        e.code = (e.http_status == 401 || e.http_status == 403) ? errc::auth_failed : errc::not_connected;
      } else {
        e.message = "HTTP " + std::to_string(e.http_status) + " " + std::string(res.reason()) +
                    " (not from nl-gateway: a proxy in front of it, or another server, answered)";
        e.code = errc::not_connected;
      }
    } else {
      e.message = "WebSocket upgrade failed: " + ec.message();
    }
    co_return std::unexpected(e);
  }
  auto selected = res[http::field::sec_websocket_protocol];
  if (selected != subprotocol && selected != subprotocol_early) {
    co_return std::unexpected(dial_error{errc::protocol, 0, "gateway speaks neither nl.2 nor nl.1"});
  }
  auto mux = o.mux;
  mux.early_data = selected == subprotocol_early;
  auto name = o.url.tls ? "wss" : "ws";
  auto ch = std::make_unique<ws_channel<Next>>(std::move(ws), name, std::move(remote));
  auto s = make_mux_session(std::move(ch), std::move(mux));
  auto hello = co_await wait_hello(*s, o.timeout);
  if (!hello) {
    auto msg = s->closed_by().message;
    co_return std::unexpected(dial_error{errc::not_connected, 0, msg.empty() ? "no HELLO from gateway" : msg});
  }
  co_return dial_result{s, std::move(*hello)};
}

// TCP connect (+ TLS with verification) to the gateway; calls `then` with the stream.
template <class Then>
auto connect_then(const dial_options& o, Then then) -> decltype(then(std::declval<tcp_stream>(), std::string())) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  error_code ec;
  tcp::resolver::results_type results;
  {
    watchdog wd(ex, o.timeout, [&resolver] { resolver.cancel(); });
    results = co_await resolver.async_resolve(o.url.host, std::to_string(o.url.port),
                                              asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    co_return std::unexpected(dial_error{errc::dns_failure, 0, "cannot resolve " + o.url.host + ": " + ec.message()});
  }
  // From here Beast's tcp_stream deadline covers connect, TLS and the upgrade (every layer
  // above it reads and writes through it); the channel clears it once the session runs.
  tcp_stream stream(ex);
  stream.expires_after(o.timeout);
  co_await stream.async_connect(results, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return std::unexpected(dial_error{errc::not_connected, 0,
                                         "cannot connect to " + o.url.to_string() + ": " +
                                             (ec == beast::error::timeout ? "timed out" : ec.message())});
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  auto remote = remote_of(stream.socket());
  if (!o.url.tls) {
    co_return co_await then(std::move(stream), remote);
  }
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  set_cipher_preference(ctx, false);
  if (o.insecure) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!o.ca_file.empty()) {
      ctx.load_verify_file(o.ca_file, ec);
      if (ec) {
        co_return std::unexpected(dial_error{errc::config, 0, "cannot load CA file " + o.ca_file + ": " + ec.message()});
      }
    } else {
      ctx.set_default_verify_paths(ec);
    }
  }
  tls_stream tls(std::move(stream), ctx);
  auto name = o.server_name.empty() ? o.url.host : o.server_name;
  error_code addr_ec;
  (void)asio::ip::make_address(name, addr_ec);  // only: is it an IP literal?
  SSL* ssl_handle = tls.native_handle();
  if (addr_ec) {
    SSL_set_tlsext_host_name(ssl_handle, name.c_str());  // SNI only for names, never IPs
  }
  if (!o.insecure) {
    auto* param = SSL_get0_param(ssl_handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (addr_ec) {
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    }
  }
  tls.expires_after(o.timeout);
  ec = co_await tls.handshake(tls_stream::role::client);
  if (ec) {
    std::string why = ec == beast::error::timeout ? "timed out" : ssl_error_text(ec);
    long v = SSL_get_verify_result(ssl_handle);
    if (v != X509_V_OK) {
      why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
    }
    co_return std::unexpected(dial_error{errc::not_connected, 0, "TLS handshake with " + o.url.to_string() + " failed: " + why});
  }
  co_return co_await then(std::move(tls), remote);
}

template <class Stream>
awaitable<std::expected<http_reply, dial_error>> get_on(Stream stream, const dial_options& o, const std::string& path) {
  http::request<http::empty_body> req{http::verb::get, o.url.prefix + path, 11};
  req.set(http::field::host, o.url.host);
  req.set(http::field::user_agent, "nl/0.1");
  req.set(http::field::authorization, "Bearer " + o.token);
  req.keep_alive(false);
  error_code ec;
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(4 * 1024 * 1024);
  if (!ec) {
    co_await http::async_read(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    co_return std::unexpected(dial_error{errc::not_connected, 0, "HTTP request failed: " + ec.message()});
  }
  auto res = parser.release();
  co_return http_reply{res.result_int(), res.body(), std::string(res["X-NL-Error"])};
}

}  // namespace

awaitable<std::expected<dial_result, dial_error>> dial(dial_options o) {
  co_return co_await connect_then(o, [&o](auto stream, std::string remote) {
    return upgrade(websocket::stream<decltype(stream)>(std::move(stream)), o, std::move(remote));
  });
}

awaitable<std::expected<http_reply, dial_error>> http_get(dial_options o, std::string path) {
  co_return co_await connect_then(o, [&o, &path](auto stream, std::string) {
    return get_on(std::move(stream), o, path);
  });
}

}  // namespace nl::transport::ws
