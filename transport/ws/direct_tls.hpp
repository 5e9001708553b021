// A TLS stream that runs OpenSSL directly on the TCP socket, for the WebSocket link.
//
// Why not asio::ssl::stream (and beast::ssl_stream on top of it): asio::ssl keeps OpenSSL
// behind a memory BIO pair, so every byte is copied once more on the way in (socket ->
// asio's buffer -> BIO) and once more on the way out (BIO -> asio's buffer -> socket), and
// beast::ssl_stream copies each WebSocket frame again to make one SSL_write of it. Here
// OpenSSL owns the file descriptor: SSL_read_ex decrypts from its read-ahead buffer straight
// into the caller's buffer and SSL_write_ex encrypts straight from the caller's bytes into
// the record that is sent. The only copy left is the few bytes of a WebSocket frame header
// plus the rest of its first TLS record, so that a header never becomes a record of its own.
//
// The socket is non-blocking; when OpenSSL wants to read or write, the operation waits for
// the socket with async_wait and tries again. Errors are reported like asio::ssl reports
// them (asio's ssl category; eof after close_notify; stream_truncated for a TCP close
// without close_notify), so callers print the same texts.
//
// Deadline: expires_after() arms one timer for every operation (handshake, HTTP upgrade);
// when it fires, waiting operations end with beast::error::timeout. expires_never() clears
// it once the session runs (liveness then belongs to the WebSocket pings).
//
// It is a Beast AsyncStream and the lowest layer of its stack: beast::get_lowest_layer()
// yields this stream, which offers socket(), close(), expires_after(), expires_never().
// Thread-safety: one executor; at most one read and one write operation at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace nl::transport::ws {

// TLS 1.3 suites in nl's order of preference, for both ends of the WebSocket link:
// AES-128-GCM first (22 % faster than AES-256-GCM per core on AES-NI/VAES hardware, the
// same security margin TLS 1.3 mandates), then AES-256-GCM, then ChaCha20-Poly1305. A
// server applies its own order, except that a client which puts ChaCha20 first (no AES
// instructions, e.g. a small ARM board) gets ChaCha20.
void set_cipher_preference(boost::asio::ssl::context& ctx, bool server);

class direct_tls_stream {
public:
  using executor_type = boost::asio::any_io_executor;
  using error_code = boost::system::error_code;
  enum class role { client, server };

  // Takes the connected socket out of `next` and makes an SSL object for it from `ctx`
  // (which may be destroyed afterwards: the SSL object keeps its own reference).
  direct_tls_stream(boost::beast::tcp_stream next, boost::asio::ssl::context& ctx);
  direct_tls_stream(direct_tls_stream&&) noexcept = default;
  direct_tls_stream& operator=(direct_tls_stream&&) noexcept = default;
  ~direct_tls_stream();  // closes the socket, which ends pending operations

  executor_type get_executor() noexcept { return s_->sock.get_executor(); }
  SSL* native_handle() noexcept { return s_->ssl; }
  boost::asio::ip::tcp::socket& socket() noexcept { return s_->sock; }
  void close();  // ends pending operations

  void expires_after(std::chrono::steady_clock::duration d);
  void expires_never();

  // TLS handshake (certificate checks as configured on the SSL object).
  boost::asio::awaitable<error_code> handshake(role r);

  // Sends close_notify if it can without waiting; for WebSocket teardown.
  void send_close_notify() noexcept;

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        read_op<MutableBuffers>{s_, buffers}, token, s_->sock);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        write_op<ConstBuffers>{s_, buffers}, token, s_->sock);
  }

  // Largest plaintext of one TLS record.
  static constexpr std::size_t record = 16 * 1024;

  // What the socket BIO knows (kept in the stream's shared state; OpenSSL holds a pointer).
  struct bio_state {
    int fd = -1;
    bool drained = false;  // the last recv came back short or with EAGAIN
  };

private:
  enum class want { none, read, write };

  struct state {
    explicit state(boost::asio::ip::tcp::socket s);
    ~state();
    state(const state&) = delete;
    state& operator=(const state&) = delete;

    // After an SSL_* call returned `r` (failure): what to wait for, or the error.
    error_code failure(int r, want& w);
    // The error an operation reports when its socket wait ended with `ec`.
    error_code wait_error(const error_code& ec) const;
    // Copies bytes [from, from + record) of the sequence into `stage`; returns how many.
    template <class Buffers>
    std::size_t gather(const Buffers& b, std::size_t from);
    template <class Self>
    void wait(want w, Self&& self) {
      sock.async_wait(w == want::read ? boost::asio::socket_base::wait_read : boost::asio::socket_base::wait_write,
                      std::forward<Self>(self));
    }

    boost::asio::ip::tcp::socket sock;
    bio_state bio;
    SSL* ssl = nullptr;
    boost::asio::steady_timer timer;
    bool timed_out = false;
    unsigned deadline_gen = 0;  // a timer callback from an older deadline is ignored
    // A record gathered from several buffers (a frame header and the start of its payload).
    // It stays until OpenSSL has taken it: a write that must be retried is retried with it.
    std::unique_ptr<unsigned char[]> stage;
    std::size_t staged = 0;
  };

  // Shared by the operations in flight, so a move of the stream does not strand them.
  std::shared_ptr<state> s_;

  // Completion from inside the initiating call must go through the executor.
  struct completion {
    bool waited = false;
    bool posted = false;
    error_code res_ec;
    std::size_t res_n = 0;

    // Every entry of an operation starts here: true when it has completed (a posted result,
    // a failed socket wait or the deadline), false when it should go on with OpenSSL.
    template <class Self>
    bool settled(Self& self, const state& st, const error_code& ec) {
      if (posted) {
        self.complete(res_ec, res_n);
        return true;
      }
      if (ec) {
        self.complete(st.wait_error(ec), 0);
        return true;
      }
      if (st.timed_out) {
        finish(self, boost::beast::error::timeout, 0);
        return true;
      }
      return false;
    }

    // An SSL call failed before moving any byte: wait for what OpenSSL wants from the
    // socket (the operation runs again afterwards), or complete with the error.
    template <class Self>
    void wait_or_fail(Self& self, state& st, want w, const error_code& e) {
      if (w != want::none) {
        waited = true;  // before `self` (which holds this object) is moved into the wait
        st.wait(w, std::move(self));
        return;
      }
      finish(self, e, 0);
    }

    template <class Self>
    void finish(Self& self, error_code e, std::size_t bytes) {
      if (waited) {
        self.complete(e, bytes);
        return;
      }
      posted = true;
      res_ec = e;
      res_n = bytes;
      boost::asio::post(std::move(self));
    }
  };

  template <class Buffers>
  struct read_op : completion {
    std::shared_ptr<state> s;
    Buffers b;
    read_op(std::shared_ptr<state> st, const Buffers& bufs) : s(std::move(st)), b(bufs) {}

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (this->settled(self, *s, ec)) return;
      // Nothing buffered and the last recv emptied the socket: wait for it first instead of
      // making a recv that can only fail with EAGAIN (once per operation; after the wait,
      // read). Waiting re-arms the descriptor (EPOLL_CTL_MOD), so bytes that came in since
      // that recv are not missed.
      if (!this->waited && SSL_has_pending(s->ssl) == 0 && s->bio.drained) {
        this->wait_or_fail(self, *s, want::read, {});
        return;
      }
      boost::asio::mutable_buffer buf;
      for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b); ++it) {
        buf = *it;
        if (buf.size() != 0) break;
      }
      // Drain whole records into the buffer while OpenSSL has them (read-ahead).
      std::size_t got = 0;
      while (got < buf.size()) {
        std::size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(s->ssl, static_cast<char*>(buf.data()) + got, buf.size() - got, &n);
        if (r == 1) {
          got += n;
          // Another SSL_read would only find an empty socket (one wasted recv per message):
          // go on only while OpenSSL holds bytes or the last recv filled its buffer.
          if (SSL_has_pending(s->ssl) == 0 && s->bio.drained) break;
          continue;
        }
        want w = want::none;
        auto e = s->failure(r, w);
        if (got != 0) break;  // report the bytes; the error or wait comes with the next call
        this->wait_or_fail(self, *s, w, e);
        return;
      }
      this->finish(self, {}, got);
    }
  };

  template <class Buffers>
  struct write_op : completion {
    std::shared_ptr<state> s;
    Buffers b;
    std::size_t total;
    std::size_t written = 0;
    write_op(std::shared_ptr<state> st, const Buffers& bufs)
        : s(std::move(st)), b(bufs), total(boost::asio::buffer_size(bufs)) {}

    // Writes no more than this per operation, so one writer cannot hold the thread long.
    static constexpr std::size_t max_per_op = 256 * 1024;

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (this->settled(self, *s, ec)) return;
      while (written < total && written < max_per_op) {
        const void* p = nullptr;
        std::size_t len = 0;
        if (s->staged == 0) {
          // The contiguous piece at `written`.
          std::size_t skip = written;
          boost::asio::const_buffer cur;
          for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b); ++it) {
            boost::asio::const_buffer x = *it;
            if (skip < x.size()) {
              cur = x + skip;
              break;
            }
            skip -= x.size();
          }
          if (cur.size() < record && cur.size() < total - written) {
            s->staged = s->gather(b, written);  // short piece with more behind it: one record
          } else {
            p = cur.data();
            len = cur.size();
          }
        }
        if (s->staged != 0) {
          p = s->stage.get();
          len = s->staged;
        }
        std::size_t n = 0;
        ERR_clear_error();
        int r = SSL_write_ex(s->ssl, p, len, &n);
        if (r == 1) {
          written += n;
          s->staged = 0;  // partial-write mode: n may be less than a staged record; regather
          continue;
        }
        want w = want::none;
        auto e = s->failure(r, w);
        if (written != 0) break;
        this->wait_or_fail(self, *s, w, e);
        return;
      }
      this->finish(self, {}, written);
    }
  };
};

template <class Buffers>
std::size_t direct_tls_stream::state::gather(const Buffers& b, std::size_t from) {
  if (!stage) {
    stage = std::make_unique<unsigned char[]>(record);
  }
  std::size_t n = 0;
  for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b) && n < record;
       ++it) {
    boost::asio::const_buffer x = *it;
    if (from >= x.size()) {
      from -= x.size();
      continue;
    }
    x += from;
    from = 0;
    n += boost::asio::buffer_copy(boost::asio::buffer(stage.get() + n, record - n), x);
  }
  return n;
}

// Beast's close customisation point (websocket timeouts close the lowest layer with it).
inline void beast_close_socket(direct_tls_stream& stream) {
  stream.close();
}

// WebSocket closing handshake hooks, found by argument-dependent lookup: close_notify,
// then the TCP teardown Beast does for a plain socket.
void teardown(boost::beast::role_type role, direct_tls_stream& stream, boost::system::error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, direct_tls_stream& stream, TeardownHandler&& handler) {
  stream.send_close_notify();
  boost::beast::websocket::async_teardown(role, stream.socket(), std::forward<TeardownHandler>(handler));
}

}  // namespace nl::transport::ws
