// Helpers for the QUIC transport tests (quic_test.cpp, quic_hostile_test.cpp): certificates
// made by the openssl CLI once per run, client and listener options on 127.0.0.1, a
// connected client/gateway session pair, and a UDP relay that can drop answers or be cut.
// Every wait is bounded (run_until / run_test).
#pragma once

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "transport/quic/quic_session.hpp"

#include "../transport/harness.hpp"  // run_until, run_test, pattern, read_all

namespace nl::test::quic_h {

using namespace std::chrono_literals;
namespace quic = nl::transport::quic;
namespace asio = boost::asio;
using udp = asio::ip::udp;


// A self-signed certificate for "localhost" (its own CA) in a fresh temporary directory.
struct cert_set {
  std::filesystem::path dir;
  std::string cert, key;
};

inline cert_set make_cert(const std::string& tag) {
  cert_set c;
  c.dir = std::filesystem::temp_directory_path() /
          ("nl-quic-test-" + std::to_string(::getpid()) + "-" + tag);
  std::filesystem::create_directories(c.dir);
  c.cert = (c.dir / "cert.pem").string();
  c.key = (c.dir / "key.pem").string();
  if (!std::filesystem::exists(c.cert)) {
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
               " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
               " -keyout '" + c.key + "' -out '" + c.cert + "' >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  return c;
}

inline const cert_set& server_cert() {
  static cert_set c = make_cert("server");
  return c;
}
inline const cert_set& other_cert() {
  static cert_set c = make_cert("other");
  return c;
}

inline quic::quic_options fast_options() {
  quic::quic_options o;
  o.idle_timeout = 5s;
  o.keepalive = 1s;
  return o;
}

inline quic::client_options client_to(std::uint16_t port, std::string token = "token-abc") {
  quic::client_options o;
  o.host = "127.0.0.1";
  o.port = port;
  o.server_name = "localhost";
  o.ca_file = server_cert().cert;
  o.token = std::move(token);
  o.timeout = 3s;
  o.quic = fast_options();
  return o;
}

inline proto::hello_body gateway_hello() {
  proto::hello_body h;
  h.keepalive_ms = 1000;
  h.max_streams = 4096;
  h.identity = "acme/laptop";
  h.info = "quic unit test";
  return h;
}

// A listener on 127.0.0.1, any port, with server_cert().
inline quic::listener_options listener_options(quic::quic_options qo = fast_options()) {
  quic::listener_options lo;
  lo.listen = "127.0.0.1:0";
  lo.cert_file = server_cert().cert;
  lo.key_file = server_cert().key;
  lo.handshake_timeout = 3s;
  lo.quic = std::move(qo);
  return lo;
}

inline std::unique_ptr<quic::listener> make_listener(asio::io_context& io, quic::listener_options lo) {
  auto l = quic::listener::create(io.get_executor(), std::move(lo));
  REQUIRE(l);
  return std::move(*l);
}

inline std::unique_ptr<quic::listener> make_listener(asio::io_context& io, quic::quic_options qo = fast_options()) {
  return make_listener(io, listener_options(std::move(qo)));
}

// A connected client/gateway session pair.
struct quic_pair {
  std::unique_ptr<quic::listener> listener;
  std::shared_ptr<transport::session> client;  // dialed
  std::shared_ptr<transport::session> server;  // accepted
  std::string token_seen;
  proto::hello_body hello_seen;
};

inline awaitable<void> accept_one(quic::listener& l, quic_pair& p) {
  auto pending = co_await l.accept();
  REQUIRE(pending);
  p.token_seen = (*pending)->token();
  p.server = (*pending)->accept(gateway_hello());
}

inline awaitable<void> dial_into(asio::io_context& io, quic::client_options o, quic_pair& p) {
  auto r = co_await quic::connect(io.get_executor(), std::move(o));
  if (!r) {
    FAIL("dial failed: " << r.error().message);
  }
  p.client = r->session;
  p.hello_seen = r->hello;
}

// Dials `opts` into `l` and accepts that session: both ends land in `p`.
inline void connect_pair(asio::io_context& io, quic::listener& l, quic::client_options opts, quic_pair& p,
                         std::chrono::milliseconds deadline = 5000ms) {
  auto body = [&]() -> awaitable<void> { co_await when_both(accept_one(l, p), dial_into(io, opts, p)); };
  REQUIRE(run_test(io, body, deadline));
  REQUIRE(p.client);
  REQUIRE(p.server);
}

inline quic_pair make_pair(asio::io_context& io, quic::quic_options server_opts = fast_options(),
                           quic::quic_options client_opts = fast_options()) {
  quic_pair p;
  p.listener = make_listener(io, std::move(server_opts));
  auto opts = client_to(p.listener->local_endpoint().port());
  opts.quic = std::move(client_opts);
  connect_pair(io, *p.listener, std::move(opts), p);
  return p;
}


// A UDP relay between a client (which sends to `front`) and a listener. It passes what the
// client sends, and of the listener's datagrams the first `answers` (all by default; 0: a
// spoofed source, which never sees an answer; 1: only the Retry). `cut` drops everything
// both ways, like a pulled cable. Counters for tests to wait on. The listener sees the
// client's datagrams come from `source` (another loopback address is another client host).
struct udp_relay {
  udp::socket front, back;
  udp::endpoint server, client;
  std::vector<std::uint8_t> up = std::vector<std::uint8_t>(65536), down = std::vector<std::uint8_t>(65536);
  std::size_t answers;
  bool cut = false;
  std::size_t forwarded = 0, answered = 0, passed_back = 0;
  udp_relay(asio::io_context& io, udp::endpoint to, std::size_t pass_answers = SIZE_MAX,
            const char* source = "127.0.0.1")
      : front(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        back(io, udp::endpoint(asio::ip::make_address(source), 0)),
        server(to),
        answers(pass_answers) {
    client_to_server();
    server_to_client();
  }
  void client_to_server() {
    front.async_receive_from(asio::buffer(up), client, [this](boost::system::error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || !front.is_open()) return;
      if (!ec && !cut) {
        back.send_to(asio::buffer(up.data(), n), server, 0, ec);
        ++forwarded;
      }
      client_to_server();
    });
  }
  void server_to_client() {
    back.async_receive(asio::buffer(down), [this](boost::system::error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || !back.is_open()) return;
      if (!ec) {
        ++answered;
        if (!cut && passed_back < answers) {
          ++passed_back;
          front.send_to(asio::buffer(down.data(), n), client, 0, ec);
        }
      }
      server_to_client();
    });
  }
};

}  // namespace nl::test::quic_h
