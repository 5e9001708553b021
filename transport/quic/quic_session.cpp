// Socket owners for QUIC connections: the client's connected UDP socket (connect()) and
// the listener's shared socket that demultiplexes datagrams by destination connection ID.
#include "transport/quic/quic_session.hpp"

#include <array>
#include <deque>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gnutls/crypto.h>
#include <spdlog/spdlog.h>

#include "common/async.hpp"
#include "common/log.hpp"
#include "transport/address_quota.hpp"
#include "transport/quic/quic_connection.hpp"
#include "transport/quic/quic_internal.hpp"
#include "transport/quic/quic_tls.hpp"
#include "transport/quic/udp_io.hpp"

namespace nl::transport::quic {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using detail::connection;

constexpr std::size_t max_datagram = 65536;
constexpr std::size_t max_datagrams_per_wakeup = 64;  // then let other handlers run
constexpr std::size_t server_cid_len = 18;            // = detail cid_len
constexpr int socket_buffer = 4 * 1024 * 1024;        // SO_RCVBUF / SO_SNDBUF wish (the kernel may cap it)
// How long a Retry token is honoured: the client answers a Retry at once.
constexpr ngtcp2_duration retry_token_lifetime = 10 * NGTCP2_SECONDS;
using retry_secret = std::array<std::uint8_t, 32>;

void tune(udp::socket& s) {
  error_code ec;
  s.non_blocking(true, ec);
  s.set_option(asio::socket_base::receive_buffer_size(socket_buffer), ec);
  s.set_option(asio::socket_base::send_buffer_size(socket_buffer), ec);
}

std::string cid_key(const std::uint8_t* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

class client_host final : public detail::conn_host {
public:
  explicit client_host(udp::socket s) : sock(std::move(s)), io(sock.native_handle()) {}
  error_code send(const udp::endpoint&, const std::uint8_t* p, std::size_t n, std::size_t segment) override {
    return io.send(nullptr, p, n, segment);
  }
  awaitable<error_code> wait_writable() override {
    error_code ec;
    co_await sock.async_wait(udp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }
  void on_done(connection&) override {
    error_code ec;
    sock.close(ec);  // ends the reader
  }
  udp::socket sock;
  detail::udp_batch_io io;
};

// Takes what the socket has, up to max_datagrams_per_wakeup calls, and feeds each datagram
// in (a GRO run is split by its segment size; a truncated one is skipped). Returns the
// error that ended it: would_block when the socket is empty.
template <class Deliver>
error_code receive_runs(detail::udp_batch_io& io, std::vector<std::uint8_t>& buf, udp::endpoint* from,
                        Deliver&& deliver) {
  error_code ec;
  for (std::size_t i = 0; i < max_datagrams_per_wakeup; ++i) {
    std::size_t segment = 0;
    auto n = io.receive(buf.data(), buf.size(), from, segment, ec);
    if (ec) {
      return ec;
    }
    for (std::size_t off = 0; segment > 0 && off < n; off += segment) {
      deliver(buf.data() + off, std::min(segment, n - off));
    }
  }
  return ec;
}

awaitable<void> client_reader(std::shared_ptr<client_host> host, std::shared_ptr<connection> c) {
  std::vector<std::uint8_t> buf(max_datagram);
  udp::endpoint from = c->done() ? udp::endpoint{} : host->sock.remote_endpoint();
  while (!c->done()) {
    error_code ec;
    co_await host->sock.async_wait(udp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      ec = receive_runs(host->io, buf, nullptr, [&](const std::uint8_t* p, std::size_t len) {
        if (!c->done()) {
          c->on_packet(from, p, len);
        }
      });
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      if (ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
        c->on_socket_error(ec);
      }
      break;
    }
  }
}

std::expected<dial_result, dial_error> dial_failed(errc code, std::string message) {
  dial_error e;
  e.code = code;
  e.message = std::move(message);
  return std::unexpected(std::move(e));
}

std::expected<dial_result, dial_error> dial_outcome(const std::shared_ptr<connection>& c) {
  if (c->established() && c->is_open()) {
    dial_result r;
    r.session = c;
    r.hello = c->server_hello();
    return r;
  }
  return dial_failed(c->fail_code(), c->fail_text().empty() ? "connection closed during set-up" : c->fail_text());
}

// Creates the socket and the connection and starts the handshake; plain function (g++ 12).
std::expected<std::shared_ptr<connection>, dial_error> start_client(const asio::any_io_executor& ex,
                                                                    const client_options& opts,
                                                                    const udp::endpoint& remote) {
  auto cred = tls::credentials::client(opts.ca_file);
  if (!cred) {
    dial_error e;
    e.code = errc::config;
    e.message = cred.error();
    return std::unexpected(std::move(e));
  }
  udp::socket sock(ex);
  error_code ec;
  sock.open(remote.protocol(), ec);
  if (!ec) {
    sock.connect(remote, ec);
  }
  if (ec) {
    dial_error e;
    e.message = "UDP socket to " + remote.address().to_string() + ": " + ec.message();
    return std::unexpected(std::move(e));
  }
  tune(sock);
  auto local = sock.local_endpoint(ec);
  auto host = std::make_shared<client_host>(std::move(sock));
  auto qo = opts.quic;
  if (qo.log_name.empty()) {
    qo.log_name = "quic " + opts.host + ":" + std::to_string(opts.port);
  }
  auto c = std::make_shared<connection>(ex, false, std::move(qo), host);
  if (auto err = c->init_client(opts, local, remote, *cred); !err.empty()) {
    dial_error e;
    e.code = errc::internal;
    e.message = err;
    return std::unexpected(std::move(e));
  }
  asio::co_spawn(ex, client_reader(host, c), asio::detached);
  return c;
}

}  // namespace

awaitable<std::expected<dial_result, dial_error>> connect(asio::any_io_executor ex, client_options opts) {
  udp::resolver resolver(ex);
  error_code ec;
  auto eps = co_await resolver.async_resolve(opts.host, std::to_string(opts.port),
                                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec || eps.empty()) {
    co_return dial_failed(errc::not_connected, "cannot resolve '" + opts.host + "': " + ec.message());
  }
  auto started = start_client(ex, opts, eps.begin()->endpoint());
  if (!started) {
    co_return std::unexpected(std::move(started.error()));
  }
  auto c = *started;
  auto timeout = opts.timeout;
  std::string what = "no QUIC answer from " + opts.host + ":" + std::to_string(opts.port) + " within " +
                     std::to_string(timeout.count()) + " ms";
  watchdog wd(ex, timeout, [c, what] { c->fail_dial(errc::timeout, what); });
  while (!c->established() && !c->done()) {
    co_await c->state_event().wait();
  }
  co_return dial_outcome(c);
}

// ---------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------

namespace {

class server_core final : public detail::conn_host, public std::enable_shared_from_this<server_core> {
public:
  server_core(asio::any_io_executor ex, udp::socket s, listener_options o, std::shared_ptr<tls::credentials> cred,
              const retry_secret& secret)
      : ex_(std::move(ex)), sock_(std::move(s)), io_(sock_.native_handle()), opts_(std::move(o)), cred_(std::move(cred)),
        retry_secret_(secret), accept_ev_(ex_) {
    local_ = sock_.local_endpoint();
  }

  error_code send(const udp::endpoint& to, const std::uint8_t* p, std::size_t n, std::size_t segment) override {
    return io_.send(&to, p, n, segment);
  }
  awaitable<error_code> wait_writable() override {
    error_code ec;
    co_await sock_.async_wait(udp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }
  void add_cid(const ngtcp2_cid& cid, const std::shared_ptr<connection>& c) override {
    by_cid_[cid_key(cid.data, cid.datalen)] = c;
  }
  void remove_cid(const ngtcp2_cid& cid) override { by_cid_.erase(cid_key(cid.data, cid.datalen)); }
  void on_pending(const std::shared_ptr<connection>& c) override {
    if (stopped_) {
      c->refuse(errc::not_connected, "the gateway is shutting down");
      return;
    }
    handshake_over(c.get());
    pending_.push_back(c);
    accept_ev_.notify();
  }
  void on_done(connection& c) override {
    handshake_over(&c);
    for (const auto& cid : c.cids()) {
      by_cid_.erase(cid_key(cid.data, cid.datalen));
    }
    live_.erase(&c);
    maybe_close_socket();
  }

  void start() { asio::co_spawn(ex_, reader(shared_from_this()), asio::detached); }

  awaitable<result<std::unique_ptr<pending_session>>> accept();

  void stop() {
    stopped_ = true;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& c : pending) {
      c->refuse(errc::not_connected, "the gateway is shutting down");
    }
    accept_ev_.notify();
    maybe_close_socket();
  }

  // The listener handle is gone: close every session (they hold a reference to us).
  void shutdown() {
    stop();
    std::vector<std::shared_ptr<connection>> all;
    for (auto& [p, w] : live_) {
      if (auto c = w.lock()) {
        all.push_back(c);
      }
    }
    for (auto& c : all) {
      c->close(proto::goaway_code::normal, "listener closed");
    }
    by_cid_.clear();
    live_.clear();
    while (!handshaking_.empty()) {
      handshake_over(handshaking_.begin()->first);
    }
    maybe_close_socket();
  }

  udp::endpoint local_endpoint() const { return local_; }

private:
  void maybe_close_socket() {
    if (stopped_ && live_.empty()) {
      error_code ec;
      sock_.close(ec);
    }
  }

  void on_datagram(const udp::endpoint& from, const std::uint8_t* p, std::size_t n) {
    ngtcp2_version_cid vc;
    if (ngtcp2_pkt_decode_version_cid(&vc, p, n, server_cid_len) != 0) {
      return;  // not QUIC v1, or garbage (no version negotiation in this prototype)
    }
    if (auto it = by_cid_.find(cid_key(vc.dcid, vc.dcidlen)); it != by_cid_.end()) {
      auto c = it->second;
      c->on_packet(from, p, n);
      return;
    }
    if (stopped_) {
      return;
    }
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, p, n) != 0) {
      return;
    }
    // No state for an address until it has shown that it receives what we send there: the
    // first Initial gets a Retry with a token bound to the address; only an Initial that
    // returns the token starts a handshake (a spoofed source cannot take a place).
    if (hd.token.len == 0 || hd.token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
      send_retry(from, hd);
      return;
    }
    ngtcp2_cid odcid;
    if (!retry_token_valid(from, hd, odcid)) {
      return;  // a client that got our Retry takes no other: its attempt ends here (RFC 9000 8.1.2)
    }
    if (handshaking_.size() >= opts_.max_pending) {
      shed(from);
      return;
    }
    if (!per_address_.try_take(from.address())) {
      shed_source(from);
      return;
    }
    auto qo = opts_.quic;
    if (qo.log_name.empty()) {
      qo.log_name = "quic " + from.address().to_string() + ":" + std::to_string(from.port());
    }
    auto c = std::make_shared<connection>(ex_, true, std::move(qo), shared_from_this());
    if (auto err = c->init_server(local_, from, hd, odcid, cred_, opts_.handshake_timeout); !err.empty()) {
      spdlog::warn("quic listener: cannot set up a connection from {}: {}", from.address().to_string(), err);
      for (const auto& cid : c->cids()) {
        by_cid_.erase(cid_key(cid.data, cid.datalen));
      }
      per_address_.give_back(from.address());
      return;
    }
    live_.emplace(c.get(), c);
    handshaking_.emplace(c.get(), from.address());
    c->on_packet(from, p, n);
  }

  // True if the Retry token in the Initial `hd` is ours, unexpired and for `from`; then the
  // DCID of the Initial that the Retry answered goes to `odcid`.
  bool retry_token_valid(const udp::endpoint& from, const ngtcp2_pkt_hd& hd, ngtcp2_cid& odcid) const {
    return ngtcp2_crypto_verify_retry_token(&odcid, hd.token.base, hd.token.len, retry_secret_.data(),
                                            retry_secret_.size(), hd.version, sockaddr_of(from),
                                            static_cast<ngtcp2_socklen>(from.size()), &hd.dcid, retry_token_lifetime,
                                            detail::now_ts()) == 0;
  }

  // Answers the Initial `hd` with a Retry whose token binds `from` and the Initial's DCID.
  void send_retry(const udp::endpoint& from, const ngtcp2_pkt_hd& hd) {
    ngtcp2_cid scid;
    std::array<std::uint8_t, NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN> token;
    std::array<std::uint8_t, 256> packet;
    if (!detail::random_cid(scid)) {
      return;
    }
    auto tokenlen = ngtcp2_crypto_generate_retry_token(
        token.data(), retry_secret_.data(), retry_secret_.size(), hd.version, sockaddr_of(from),
        static_cast<ngtcp2_socklen>(from.size()), &scid, &hd.dcid, detail::now_ts());
    if (tokenlen < 0) {
      return;
    }
    auto len = ngtcp2_crypto_write_retry(packet.data(), packet.size(), hd.version, &hd.scid, &scid, &hd.dcid,
                                         token.data(), static_cast<std::size_t>(tokenlen));
    if (len > 0) {
      (void)io_.send(&from, packet.data(), static_cast<std::size_t>(len), 0);  // lost: the client resends
    }
  }

  static const ngtcp2_sockaddr* sockaddr_of(const udp::endpoint& ep) {
    return reinterpret_cast<const ngtcp2_sockaddr*>(ep.data());
  }

  // Drops an Initial over max_pending; says so at most every 10 s, with a count.
  void shed(const udp::endpoint& from) {
    if (auto n = shed_.note()) {
      spdlog::warn("quic listener: {} handshakes at once (max_pending_connections); dropped {} new ones "
                   "since the last such warning (the latest from {})",
                   handshaking_.size(), n, from.address().to_string());
    }
  }

  // The same for an Initial over max_pending_per_address.
  void shed_source(const udp::endpoint& from) {
    if (auto n = shed_source_.note()) {
      spdlog::warn("quic listener: {} handshakes at once from {} (max_pending_per_address); dropped {} new ones "
                   "over that cap since the last such warning",
                   per_address_.held(from.address()), from.address().to_string(), n);
    }
  }

  // A connection's handshake ended (HELLO came, or the connection did): its place is free.
  void handshake_over(connection* c) {
    if (auto it = handshaking_.find(c); it != handshaking_.end()) {
      per_address_.give_back(it->second);
      handshaking_.erase(it);
    }
  }

  static awaitable<void> reader(std::shared_ptr<server_core> self) {
    std::vector<std::uint8_t> buf(max_datagram);
    udp::endpoint from;
    while (self->sock_.is_open()) {
      error_code ec;
      co_await self->sock_.async_wait(udp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
        break;
      }
      if (!ec) {
        receive_runs(self->io_, buf, &from, [&](const std::uint8_t* p, std::size_t len) {
          if (self->sock_.is_open()) {
            self->on_datagram(from, p, len);
          }
        });
      }
      // Other errors (ICMP unreachable reported for an earlier send) concern one peer only.
    }
  }

  friend class pending_impl;
  asio::any_io_executor ex_;
  udp::socket sock_;
  detail::udp_batch_io io_;
  listener_options opts_;
  std::shared_ptr<tls::credentials> cred_;
  retry_secret retry_secret_;  // keys this listener's Retry tokens
  udp::endpoint local_;
  std::unordered_map<std::string, std::shared_ptr<connection>> by_cid_;
  std::unordered_map<connection*, std::weak_ptr<connection>> live_;
  std::deque<std::shared_ptr<connection>> pending_;
  // In live_, no HELLO yet (max_pending), with the address each counts against.
  std::unordered_map<connection*, asio::ip::address> handshaking_;
  address_quota per_address_{opts_.max_pending_per_address};
  log_throttle shed_{std::chrono::seconds(10)};         // Initials dropped for max_pending
  log_throttle shed_source_{std::chrono::seconds(10)};  // for max_pending_per_address
  async_event accept_ev_;
  bool stopped_ = false;
};

class pending_impl final : public pending_session {
public:
  explicit pending_impl(std::shared_ptr<connection> c) : c_(std::move(c)) {}
  ~pending_impl() override {
    if (!answered_) {
      c_->refuse(errc::auth_failed, "not accepted");
    }
  }
  const std::string& token() const noexcept override { return c_->token(); }
  const std::string& client_info() const noexcept override { return c_->client_info(); }
  std::string_view remote_address() const noexcept override { return c_->remote_address(); }
  std::shared_ptr<transport::session> accept(proto::hello_body hello) override {
    answered_ = true;
    c_->server_accept(hello);
    return c_;
  }
  void reject(errc code, std::string message) override {
    answered_ = true;
    c_->refuse(code, std::move(message));
  }

private:
  std::shared_ptr<connection> c_;
  bool answered_ = false;
};

awaitable<result<std::unique_ptr<pending_session>>> server_core::accept() {
  auto self = shared_from_this();
  for (;;) {
    while (pending_.empty() && !stopped_) {
      co_await accept_ev_.wait();
    }
    if (pending_.empty()) {
      co_return fail(errc::session_closed);
    }
    auto c = std::move(pending_.front());
    pending_.pop_front();
    if (c->is_open()) {
      co_return std::make_unique<pending_impl>(std::move(c));
    }
  }
}

class listener_impl final : public listener {
public:
  explicit listener_impl(std::shared_ptr<server_core> core) : core_(std::move(core)) {}
  ~listener_impl() override { core_->shutdown(); }
  awaitable<result<std::unique_ptr<pending_session>>> accept() override { return core_->accept(); }
  void stop() override { core_->stop(); }
  udp::endpoint local_endpoint() const override { return core_->local_endpoint(); }

private:
  std::shared_ptr<server_core> core_;
};

std::expected<udp::endpoint, std::string> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return std::unexpected("listen address '" + listen + "' needs host:port");
  }
  auto host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  auto addr = host.empty() ? asio::ip::address(asio::ip::address_v6::any()) : asio::ip::make_address(host, ec);
  unsigned long port = 0;
  try {
    port = std::stoul(listen.substr(colon + 1));
  } catch (const std::exception&) {
    port = 70000;
  }
  if (ec || port > 65535) {
    return std::unexpected("listen address '" + listen + "' is not ip:port");
  }
  return udp::endpoint(addr, static_cast<std::uint16_t>(port));
}

}  // namespace

std::expected<std::unique_ptr<listener>, std::string> listener::create(asio::any_io_executor ex, listener_options opts) {
  auto ep = parse_listen(opts.listen);
  if (!ep) {
    return std::unexpected(ep.error());
  }
  auto cred = tls::credentials::server(opts.cert_file, opts.key_file);
  if (!cred) {
    return std::unexpected(cred.error());
  }
  udp::socket sock(ex);
  error_code ec;
  sock.open(ep->protocol(), ec);
  if (!ec) {
    sock.bind(*ep, ec);
  }
  if (ec) {
    return std::unexpected("cannot listen on UDP " + opts.listen + ": " + ec.message());
  }
  retry_secret secret;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, secret.data(), secret.size()) != 0) {
    return std::unexpected("cannot listen on UDP " + opts.listen + ": no randomness for the Retry token key");
  }
  tune(sock);
  auto core = std::make_shared<server_core>(ex, std::move(sock), std::move(opts), std::move(*cred), secret);
  core->start();
  return std::make_unique<listener_impl>(std::move(core));
}

}  // namespace nl::transport::quic
