// The SOCKS5 / HTTP CONNECT front end of nl-client (both on one port, told apart by the
// first byte) and the stdin/stdout pipe of `nl-client connect`.
#include <utility>

#include <iostream>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "client/client.hpp"
#include "common/units.hpp"
#include "proto/http_connect.hpp"
#include "proto/socks5.hpp"
#include "transport/relay.hpp"

namespace nl::client {
namespace {

using boost::asio::ip::tcp;
namespace socks5 = proto::socks5;
namespace http = proto::http;

// What an unauthenticated local peer may make us hold before it has named a target.
constexpr std::size_t max_handshake_bytes = http::max_head_size + 1024;
constexpr std::chrono::seconds handshake_timeout{10};

bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Appends what the socket has to `buf`; false on EOF, error or when over the limit.
awaitable<bool> read_more(tcp::socket& sock, std::vector<std::byte>& buf) {
  if (buf.size() >= max_handshake_bytes) {
    co_return false;
  }
  // Grow in small steps: handshakes are a few hundred bytes, and a large transient buffer
  // per connection would fragment the heap that the long-lived tunnel state sits in.
  auto old = buf.size();
  buf.resize(std::min(max_handshake_bytes, old + 512));
  error_code ec;
  auto n = co_await sock.async_read_some(asio::buffer(buf.data() + old, buf.size() - old),
                                         asio::redirect_error(use_awaitable, ec));
  buf.resize(old + n);
  co_return !ec && n > 0;
}

awaitable<bool> send(tcp::socket& sock, asio::const_buffer b) {
  error_code ec;
  co_await asio::async_write(sock, b, asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

std::string one_line(std::string s) {
  for (auto& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

// The local-side reason for a failed open: session problems look like an unreachable network.
errc local_code(const error_code& ec) {
  auto c = to_wire_code(ec);
  if (ec == make_error_code(errc::not_connected) || ec == make_error_code(errc::session_closed)) {
    return errc::no_agent;
  }
  return c;
}

std::string text(const proto::target& t) { return host_port{t.host, t.port}.to_string(); }

// Why a stream was refused, for people: the local reason and the far end's detail text.
std::string refusal(const error_code& ec, const std::string& message) {
  std::string why(describe(local_code(ec)));
  return message.empty() ? why : why + ": " + message;
}

// Logs why the agent (or the session) refused a proxied stream; returns the reason.
std::string log_refusal(bool socks, const proto::target& dest, const std::string& agent, const error_code& ec,
                        const std::string& message) {
  auto why = refusal(ec, message);
  spdlog::info("{} {} via {}: {}", socks ? "socks" : "http", text(dest), agent, why);
  return why;
}

}  // namespace

awaitable<int> client::socks(std::string agent, std::string listen) {
  auto hp = parse_host_port(listen);
  error_code ec;
  auto addr = hp ? asio::ip::make_address(hp->host.empty() ? "127.0.0.1" : hp->host, ec) : asio::ip::address{};
  if (!hp || ec) {
    std::cerr << "nl-client: --listen '" << listen << "' must be IP:PORT\n";
    co_return 2;
  }
  auto* acc = listen_on(addr, hp->port);
  if (!acc) {
    co_return 1;
  }
  auto local = acc->local_endpoint();
  spdlog::info("socks listening on {} (SOCKS5 and HTTP CONNECT) via agent {}",
               host_port{local.address().to_string(), local.port()}.to_string(), agent);
  start_link();
  serve_acceptor(*acc, [this, agent](tcp::socket sock) { return proxy_one(std::move(sock), agent); });
  co_return co_await serve_forever();
}

// A local peer's SOCKS5 or HTTP CONNECT request, once read and answered as far as it can
// be before the stream is open.
struct client::proxy_request {
  bool is_socks = true;
  bool udp = false;                   // SOCKS5 UDP ASSOCIATE (hint = where datagrams come from)
  proto::target dest;
  asio::ip::udp::endpoint hint;
  std::vector<std::byte> rest;        // bytes the application sent right behind its request
};

// A tunnel lives as long as its relay, and so does the frame of the coroutine that runs the
// relay: proxy_one keeps only what the relay needs and does the handshake (buffers, parse
// results, watchdog) and the open (reply, envelope) in coroutines of their own, whose
// frames are gone before the tunnel goes idle.
awaitable<void> client::proxy_one(tcp::socket sock, std::string agent) {
  auto req = co_await proxy_handshake(sock);
  if (!req) {
    co_return;
  }
  if (req->udp) {
    co_await udp_associate(std::move(sock), agent, req->hint);
    co_return;
  }
  auto out = co_await proxy_open(sock, agent, *req);
  if (!out.stream) {
    co_return;
  }
  auto st = co_await transport::relay(*out.stream, sock);
  if (auto v = co_await verdict(out); v.error) {  // answered early: the relay ended when the refusal came
    log_refusal(req->is_socks, req->dest, agent, v.error, v.message);
    co_return;
  }
  spdlog::debug("stream {} to {} closed: up {} B, down {} B{}", out.stream->id(), text(req->dest), st.to_stream,
                st.from_stream, st.error ? ", " + st.error.message() : "");
}

awaitable<std::optional<client::proxy_request>> client::proxy_handshake(tcp::socket& sock) {
  std::vector<std::byte> buf;
  watchdog wd(io_.get_executor(), handshake_timeout, [&sock] {
    error_code ec;
    sock.close(ec);
  });
  if (!co_await read_more(sock, buf)) {
    co_return std::nullopt;
  }
  proxy_request req;
  req.is_socks = buf[0] == std::byte{socks5::version};
  if (!req.is_socks && !http::looks_like_http(buf[0])) {
    co_return std::nullopt;  // neither protocol: just close
  }
  bool need_auth = !cfg_.socks_user.empty();
  if (req.is_socks) {
    socks5::greeting_result g;
    while ((g = socks5::parse_greeting(buf)).status == proto::parse_status::incomplete) {
      if (!co_await read_more(sock, buf)) co_return std::nullopt;
    }
    if (g.status != proto::parse_status::ok) co_return std::nullopt;
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(g.consumed));
    auto m = socks5::select_method(g.methods, need_auth);
    auto sel = socks5::method_selection(m);
    if (!co_await send(sock, asio::buffer(sel)) || m == socks5::method::none_acceptable) co_return std::nullopt;
    if (m == socks5::method::userpass) {
      socks5::userpass_result u;
      while ((u = socks5::parse_userpass(buf)).status == proto::parse_status::incomplete) {
        if (!co_await read_more(sock, buf)) co_return std::nullopt;
      }
      if (u.status != proto::parse_status::ok) co_return std::nullopt;
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(u.consumed));
      bool ok = same_secret(u.user, cfg_.socks_user) & same_secret(u.pass, cfg_.socks_pass);
      auto st = socks5::userpass_status(ok);
      if (!co_await send(sock, asio::buffer(st)) || !ok) {
        spdlog::warn("socks: bad username/password from a local client");
        co_return std::nullopt;
      }
    }
    socks5::request_result r;
    while ((r = socks5::parse_request(buf)).status == proto::parse_status::incomplete) {
      if (!co_await read_more(sock, buf)) co_return std::nullopt;
    }
    if (r.status == proto::parse_status::ok && r.cmd == socks5::command::udp_associate) {
      error_code ec;
      auto hint_addr = asio::ip::make_address(r.dest.host, ec);
      req.udp = true;
      req.hint = asio::ip::udp::endpoint(ec ? asio::ip::address() : hint_addr, r.dest.port);
      co_return req;
    }
    if (r.status != proto::parse_status::ok || r.cmd != socks5::command::connect) {
      auto rep = socks5::reply(r.status != proto::parse_status::ok ? r.reply : socks5::rep::command_not_supported);
      co_await send(sock, asio::buffer(rep));
      co_return std::nullopt;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.consumed));
    req.dest = r.dest;
  } else {
    http::head_result h;
    while ((h = http::parse_request(std::span<const std::byte>(buf))).status == http::head_status::incomplete) {
      if (!co_await read_more(sock, buf)) {
        if (buf.size() >= max_handshake_bytes) {
          co_await send(sock, asio::buffer(http::response(431, "request head too large")));
        }
        co_return std::nullopt;
      }
    }
    if (h.status != http::head_status::ok) {
      auto status = h.status == http::head_status::method_not_allowed ? 405 : 400;
      co_await send(sock, asio::buffer(http::response(status, h.error ? h.error : "")));
      co_return std::nullopt;
    }
    if (need_auth && (!h.req.proxy_auth || !(same_secret(h.req.proxy_auth->user, cfg_.socks_user) &
                                             same_secret(h.req.proxy_auth->pass, cfg_.socks_pass)))) {
      co_await send(sock, asio::buffer(http::response(407, "proxy authentication required")));
      co_return std::nullopt;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(h.consumed));
    req.dest = h.req.dest;
  }
  req.rest.assign(buf.begin(), buf.end());  // usually empty; sized to what is left
  co_return req;
}

// Opens the stream and answers the local peer. With socks.early_reply the answer is
// "succeeded" at once (out.opening is then set, and a refusal ends the relay later);
// otherwise it waits for the agent's and carries its error code. No stream when the open
// failed (the peer got the error reply) or the peer went away.
awaitable<client::piped_stream> client::proxy_open(tcp::socket& sock, const std::string& agent,
                                                   const proxy_request& req) {
  piped_stream out;
  if (cfg_.socks_early_reply) {
    out = co_await open_piped(agent, req.dest);  // waits for the answer only for e2e streams
  } else {
    auto o = co_await open(agent, req.dest);
    out = answered(std::move(o));
  }
  if (!out.stream) {
    auto code = local_code(out.error);
    auto why = log_refusal(req.is_socks, req.dest, agent, out.error, out.message);
    if (req.is_socks) {
      auto rep = socks5::reply(socks5::reply_code(code));
      co_await send(sock, asio::buffer(rep));
    } else {
      co_await send(sock, asio::buffer(http::response(http::status_for(code), one_line(why))));
    }
    co_return out;
  }
  bool sent;
  if (req.is_socks) {
    error_code ec;
    auto bound = sock.local_endpoint(ec);
    auto rep = socks5::reply(socks5::rep::succeeded, ec ? nullptr : &bound);
    sent = co_await send(sock, asio::buffer(rep));
  } else {
    sent = co_await send(sock, asio::buffer(http::response(200)));
  }
  if (sent && !req.rest.empty()) {
    auto wec = co_await out.stream->write(bytes::copy_of(std::span<const std::byte>(req.rest)));
    sent = !wec;
  }
  if (!sent) {
    out.stream.reset();
    out.opening = nullptr;
  }
  co_return out;
}

awaitable<int> client::connect(std::string agent, proto::target dest) {
  piping_ = true;
  start_link();
  auto out = co_await open_piped(agent, dest);  // stdin's first bytes go with the OPEN (TCP)
  auto refused = [&](const error_code& ec, const std::string& message) {
    std::cerr << "nl-client: " << text(dest) << " via " << agent << ": " << refusal(ec, message) << "\n";
  };
  if (!out.stream) {
    refused(out.error, out.message);
    link_.stop();
    co_return link_result_ && link_result_->end == transport::link_end::auth_failed ? 3 : 1;
  }
  if (dest.protocol == proto::transport_protocol::udp) {
    co_return co_await pipe_datagrams(*out.stream, dest);
  }
  asio::posix::stream_descriptor in(io_, ::dup(0));
  asio::posix::stream_descriptor out_fd(io_, 1);
  auto& s = *out.stream;
  bool failed = false;
  auto up = [&]() -> awaitable<void> {
    for (;;) {
      bytes b(transport::relay_chunk);
      error_code ec;
      auto n = co_await in.async_read_some(b.prepare(), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::eof) {
          co_await s.shutdown_send();
        } else if (ec != asio::error::operation_aborted) {
          s.reset(errc::aborted, "stdin failed");
        }
        break;
      }
      b.commit(n);
      if (co_await s.write(std::move(b))) {
        break;
      }
    }
  };
  auto down = [&]() -> awaitable<void> {
    if (auto v = co_await verdict(out); v.error) {
      failed = true;
      refused(v.error, v.message);
      error_code ec;
      in.close(ec);
      out_fd.close(ec);
      co_return;
    }
    for (;;) {
      auto r = co_await s.read();
      error_code ec;
      if (!r) {
        failed = true;
        std::cerr << "nl-client: stream to " << text(dest) << " reset: " << r.error().message()
                  << (s.error_message().empty() ? "" : ": " + s.error_message()) << "\n";
        in.close(ec);
        break;
      }
      if (r->empty()) {
        break;
      }
      co_await asio::async_write(out_fd, r->buffer(), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        s.reset(errc::aborted, "stdout closed");
        in.close(ec);
        break;
      }
    }
    error_code ec;
    out_fd.close(ec);  // EOF for whoever reads our stdout (ssh)
  };
  co_await when_both(up(), down());
  co_await link_.shutdown();  // flushes what stdin gave us before the process exits
  co_return failed ? 1 : 0;
}

}  // namespace nl::client
