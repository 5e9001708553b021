// The wire and the TLS links shared by the two yardstick relays of tests/bench/floor/
// (floor_relay.cpp on bare epoll, floor_asio.cpp on Asio coroutines): frames on a link are
// u32 stream id, u8 type, u8 zero, u16 payload length, payload. Not a product.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace floor_wire {

enum : std::uint8_t { OPEN = 1, DATA = 2, FIN = 3, RST = 4 };
constexpr std::size_t header = 8;
constexpr std::size_t chunk = 16 * 1024;
constexpr std::size_t link_buffer = 256 * 1024;
constexpr std::uint32_t max_streams = 65536;

[[noreturn]] inline void die(const char* what) {
  std::perror(what);
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

inline sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

inline void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

inline int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) die("listen");
  return fd;
}

// Blocking connect: on loopback the handshake completes inside the call.
inline int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  no_delay(fd);
  return fd;
}

inline bool write_all(int fd, const char* p, std::size_t n) {
  while (n != 0) {
    auto w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// One persistent link: TLS over a non-blocking socket, or plain TCP (for comparison).
struct link_t {
  int fd = -1;
  SSL* ssl = nullptr;

  void write(const char* p, std::size_t n) {
    if (ssl == nullptr) {
      if (!write_all(fd, p, n)) die("link write");
      return;
    }
    for (;;) {
      std::size_t done = 0;
      if (SSL_write_ex(ssl, p, n, &done) == 1) return;  // whole: partial writes are off
      if (SSL_get_error(ssl, 0) != SSL_ERROR_WANT_WRITE) die("SSL_write");
      pollfd q{fd, POLLOUT, 0};
      poll(&q, 1, -1);
    }
  }
  // >0 bytes, 0 nothing now, -1 link gone.
  long read(char* p, std::size_t n) {
    if (ssl == nullptr) {
      auto r = recv(fd, p, n, MSG_DONTWAIT);
      if (r > 0) return r;
      return r < 0 && errno == EAGAIN ? 0 : -1;
    }
    std::size_t got = 0;
    if (SSL_read_ex(ssl, p, n, &got) == 1) return static_cast<long>(got);
    return SSL_get_error(ssl, 0) == SSL_ERROR_WANT_READ ? 0 : -1;
  }
  bool pending() const { return ssl != nullptr && SSL_has_pending(ssl) == 1; }
};

inline SSL_CTX* tls_context(bool server, const char* cert, const char* key) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
  SSL_CTX_set_read_ahead(ctx, 1);
  if (server) {
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
      die("certificate");
    }
  }
  return ctx;
}

inline link_t make_link(int fd, SSL_CTX* ctx, bool server) {
  link_t l{fd, nullptr};
  if (ctx != nullptr) {
    l.ssl = SSL_new(ctx);
    SSL_set_fd(l.ssl, fd);
    if ((server ? SSL_accept(l.ssl) : SSL_connect(l.ssl)) != 1) die("TLS handshake");
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  return l;
}

inline void send_frame(link_t& l, std::uint32_t id, std::uint8_t type, const char* data, std::size_t len) {
  char out[header + chunk];
  auto n16 = static_cast<std::uint16_t>(len);
  std::memcpy(out, &id, 4);
  out[4] = static_cast<char>(type);
  out[5] = 0;
  std::memcpy(out + 6, &n16, 2);
  if (len != 0) std::memcpy(out + header, data, len);
  l.write(out, header + len);
}

// Whole frames from the front of buf[0, have): calls fn(id, type, payload, len) for each
// and returns how many bytes they took.
template <class Fn>
std::size_t each_frame(const char* buf, std::size_t have, Fn&& fn) {
  std::size_t off = 0;
  while (have - off >= header) {
    std::uint32_t id = 0;
    std::uint16_t len = 0;
    std::memcpy(&id, buf + off, 4);
    std::memcpy(&len, buf + off + 6, 2);
    if (have - off < header + len) break;
    fn(id % max_streams, static_cast<std::uint8_t>(buf[off + 4]), buf + off + header, std::size_t{len});
    off += header + len;
  }
  return off;
}

// The receiving end of a link: reads all the link has (records OpenSSL holds included) and
// hands over the whole frames of each read at once, as batch(frames, bytes); a partial
// frame waits for the next read. False when the link is gone.
struct frame_reader {
  std::vector<char> buf = std::vector<char>(link_buffer);
  std::size_t have = 0;

  template <class Batch>
  bool drain(link_t& l, Batch&& batch) {
    do {
      auto n = l.read(buf.data() + have, buf.size() - have);
      if (n < 0) return false;
      have += static_cast<std::size_t>(n);
      auto used = each_frame(buf.data(), have, [](auto, auto, auto, auto) {});
      if (used != 0) batch(static_cast<const char*>(buf.data()), used);
      std::memmove(buf.data(), buf.data() + used, have - used);
      have -= used;
    } while (l.pending());
    return true;
  }
};

}  // namespace floor_wire
