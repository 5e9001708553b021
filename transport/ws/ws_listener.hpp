// The gateway's HTTP(S) + WebSocket listener: accepts TCP, terminates TLS (optional),
// reads HTTP/1.1 requests with strict size limits and hands each one to a request_handler,
// which answers with a plain HTTP response (health, listings, 401 with a reason) or
// accepts a WebSocket upgrade, in which case the listener starts a mux session (acceptor
// side) and gives it to the handler. Beast stays inside this module.
// Thread-safety: one executor; the handler is called on it.
#pragma once

#include <utility>

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "transport/mux/mux_session.hpp"

namespace nl::transport::ws {

struct http_request_info {
  std::string method;
  std::string target;            // path and query as sent
  std::string host;
  std::string authorization;     // raw header value
  std::string x_forwarded_for;
  std::string x_forwarded_proto;
  std::string subprotocols;      // Sec-WebSocket-Protocol offered
  std::string remote;            // "ip:port" of the TCP peer
  bool tls = false;              // TLS terminated by this listener
  bool websocket = false;        // a WebSocket upgrade was requested
};

struct http_response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
};

struct upgrade_accept {
  mux_options mux;                                        // acceptor settings incl. HELLO
  std::function<void(std::shared_ptr<session>)> on_session;
};

using request_decision = std::variant<http_response, upgrade_accept>;

class request_handler {
public:
  virtual ~request_handler() = default;
  virtual request_decision on_request(const http_request_info& req) = 0;
};

struct listener_options {
  std::string listen;                          // host:port; port 0 picks a free one
  std::string cert_file;                       // PEM chain; empty together with key => plain
  std::string key_file;
  std::chrono::milliseconds handshake_timeout{10'000};  // TLS + first request + upgrade
  // Connections not yet a session (in the TLS handshake or HTTP, e.g. health checks) at
  // once; more are closed as soon as they are accepted, so a flood of connections that
  // never authenticate holds a bounded amount of memory.
  std::size_t max_pending = 1024;
  // Of those, at most this many from one source address (an IPv6 /64); 0 = no such cap.
  // Behind a proxy every connection comes from the proxy: see max_pending_per_address in
  // examples/nl-gateway.yaml.
  std::size_t max_pending_per_address = 64;
};

class listener {
public:
  virtual ~listener() = default;
  static std::expected<std::unique_ptr<listener>, std::string> create(boost::asio::any_io_executor ex,
                                                                      listener_options opts,
                                                                      request_handler& handler);
  virtual void start() = 0;
  virtual void stop() = 0;  // stop accepting
  virtual boost::asio::ip::tcp::endpoint local_endpoint() const = 0;
  virtual bool tls() const = 0;
};

}  // namespace nl::transport::ws
