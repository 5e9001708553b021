#include "transport/ws/direct_tls.hpp"

#include <cerrno>
#include <new>

#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nl::transport::ws {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE when the peer has
// gone; this one uses send(MSG_NOSIGNAL) like Asio does, so a dead peer is an error code.
// Its data is the stream's bio_state: the descriptor, and whether the last read found the
// socket empty.
direct_tls_stream::bio_state& bio_of(BIO* b) {
  return *static_cast<direct_tls_stream::bio_state*>(BIO_get_data(b));
}

int fd_of(BIO* b) { return bio_of(b).fd; }

int bio_write(BIO* b, const char* data, std::size_t len, std::size_t* written) {
  BIO_clear_retry_flags(b);
  for (;;) {
    auto n = ::send(fd_of(b), data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      *written = static_cast<std::size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return 0;
  }
}

int bio_read(BIO* b, char* data, std::size_t len, std::size_t* got) {
  BIO_clear_retry_flags(b);
  for (;;) {
    auto n = ::recv(fd_of(b), data, len, 0);
    if (n > 0) {
      *got = static_cast<std::size_t>(n);
      bio_of(b).drained = static_cast<std::size_t>(n) < len;  // a short read emptied the socket
      return 1;
    }
    if (n == 0) {
      if (len != 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
      *got = 0;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      bio_of(b).drained = true;
      BIO_set_retry_read(b);
    }
    return 0;
  }
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* m = [] {
    auto* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "nl socket");
    if (meth == nullptr) throw std::bad_alloc();
    BIO_meth_set_write_ex(meth, bio_write);
    BIO_meth_set_read_ex(meth, bio_read);
    BIO_meth_set_ctrl(meth, bio_ctrl);
    return meth;
  }();
  return m;
}

// OpenSSL reads this much ahead from the socket at once (several records per recv).
constexpr int read_ahead_bytes = 64 * 1024;

}  // namespace

direct_tls_stream::state::state(asio::ip::tcp::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}

direct_tls_stream::state::~state() {
  if (ssl != nullptr) SSL_free(ssl);
}

void set_cipher_preference(asio::ssl::context& ctx, bool server) {
  SSL_CTX_set_ciphersuites(ctx.native_handle(),
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  if (server) {
    SSL_CTX_set_options(ctx.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  }
}

direct_tls_stream::direct_tls_stream(boost::beast::tcp_stream next, asio::ssl::context& ctx)
    : s_(std::make_shared<state>(next.release_socket())) {
  s_->ssl = SSL_new(ctx.native_handle());
  BIO* bio = s_->ssl != nullptr ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    throw boost::system::system_error(error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category()),
                                      "cannot create TLS session");
  }
  s_->bio.fd = s_->sock.native_handle();
  BIO_set_data(bio, &s_->bio);
  BIO_set_init(bio, 1);
  SSL_set_bio(s_->ssl, bio, bio);
  error_code ec;
  s_->sock.non_blocking(true, ec);
  if (ec) throw boost::system::system_error(ec, "cannot make the socket non-blocking");
  SSL_set_mode(s_->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(s_->ssl, 1);
  SSL_set_default_read_buffer_len(s_->ssl, read_ahead_bytes);
}

direct_tls_stream::~direct_tls_stream() {
  if (s_) close();
}

void direct_tls_stream::close() {
  if (!s_) return;
  error_code ec;
  s_->timer.cancel();
  s_->sock.close(ec);
}

void direct_tls_stream::expires_after(std::chrono::steady_clock::duration d) {
  auto gen = ++s_->deadline_gen;
  s_->timed_out = false;
  s_->timer.expires_after(d);
  s_->timer.async_wait([w = std::weak_ptr<state>(s_), gen](const error_code& ec) {
    auto s = w.lock();
    if (ec || !s || s->deadline_gen != gen) return;
    s->timed_out = true;
    error_code ignored;
    s->sock.cancel(ignored);
  });
}

void direct_tls_stream::expires_never() {
  ++s_->deadline_gen;
  s_->timed_out = false;
  s_->timer.cancel();
}

error_code direct_tls_stream::state::failure(int r, want& w) {
  int err = errno;
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      w = want::read;
      return {};
    case SSL_ERROR_WANT_WRITE:
      w = want::write;
      return {};
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;  // close_notify
    case SSL_ERROR_SYSCALL:
      if (auto code = ERR_get_error(); code != 0) {
        return {static_cast<int>(code), asio::error::get_ssl_category()};
      }
      if (err != 0 && err != EAGAIN && err != EWOULDBLOCK) {
        return {err, asio::error::get_system_category()};
      }
      return asio::ssl::error::stream_truncated;
    default: {
      auto code = ERR_get_error();
      if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return asio::ssl::error::stream_truncated;  // TCP closed without close_notify
      }
      return {static_cast<int>(code), asio::error::get_ssl_category()};
    }
  }
}

error_code direct_tls_stream::state::wait_error(const error_code& ec) const {
  if (ec == asio::error::operation_aborted && timed_out) {
    return boost::beast::error::timeout;
  }
  return ec;
}

asio::awaitable<error_code> direct_tls_stream::handshake(role r) {
  auto s = s_;
  if (r == role::client) {
    SSL_set_connect_state(s->ssl);
  } else {
    SSL_set_accept_state(s->ssl);
  }
  for (;;) {
    if (s->timed_out) co_return boost::beast::error::timeout;
    ERR_clear_error();
    int rc = SSL_do_handshake(s->ssl);
    if (rc == 1) co_return error_code{};
    want w = want::none;
    auto e = s->failure(rc, w);
    if (w == want::none) co_return e;
    error_code wec;
    co_await s->sock.async_wait(w == want::read ? asio::socket_base::wait_read : asio::socket_base::wait_write,
                                asio::redirect_error(asio::use_awaitable, wec));
    if (wec) co_return s->wait_error(wec);
  }
}

void direct_tls_stream::send_close_notify() noexcept {
  if (!s_ || s_->ssl == nullptr || SSL_is_init_finished(s_->ssl) == 0) return;
  ERR_clear_error();
  (void)SSL_shutdown(s_->ssl);  // one non-blocking attempt; the TCP teardown follows anyway
  ERR_clear_error();
}

void teardown(boost::beast::role_type role, direct_tls_stream& stream, boost::system::error_code& ec) {
  stream.send_close_notify();
  boost::beast::websocket::teardown(role, stream.socket(), ec);
}

}  // namespace nl::transport::ws
