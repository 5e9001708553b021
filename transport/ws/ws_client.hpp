// Dialing the gateway over WebSocket (ws:// or wss://): TCP connect with a deadline,
// TLS with SNI and certificate + host name verification, HTTP Upgrade carrying the token
// as a Bearer credential, then a mux session (initiator side) that is returned once the
// gateway's HELLO arrived. Thread-safety: call from the io thread.
#pragma once

#include <utility>

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/units.hpp"
#include "config/config.hpp"
#include "transport/mux/mux_session.hpp"

namespace nl::transport::ws {

struct dial_options {
  config::gateway_url url;
  std::string endpoint;          // "/v1/agent" or "/v1/client" (appended to url.prefix)
  std::string token;
  std::string ca_file;           // "" = system trust store
  bool insecure = false;         // skip certificate verification
  std::string server_name;       // "" = url.host
  std::chrono::milliseconds timeout{10'000};  // whole dial: TCP + TLS + upgrade + HELLO
  mux_options mux;               // initiator settings
};

struct dial_error {
  errc code = errc::not_connected;  // auth_failed when the gateway refused the token
  int http_status = 0;              // 401, 403, ... when the gateway answered HTTP
  std::string message;              // human text ("token expired", "connection refused")
};

struct dial_result {
  std::shared_ptr<transport::session> session;
  proto::hello_body hello;
};

awaitable<std::expected<dial_result, dial_error>> dial(dial_options opts);

}  // namespace nl::transport::ws

namespace nl::transport::ws {

struct http_reply {
  unsigned status = 0;
  std::string body;
  std::string error_header;  // X-NL-Error, when present
};

// One HTTP GET to the gateway (e.g. /v1/agents) with the same URL, TLS and token handling
// as dial(). Used by `nl-client list`.
awaitable<std::expected<http_reply, dial_error>> http_get(dial_options opts, std::string path);

}  // namespace nl::transport::ws
