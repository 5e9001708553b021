// nl-floor-relay: the cheapest relay with nl's shape, as a yardstick for the benchmark
// (tests/bench/rows/85-floor-3tls.sh). Not a product and not installed.
//
//   nl-floor-relay mid PORT CERT KEY      the "gateway": accepts two links, routes frames
//   nl-floor-relay out MID_PORT TARGET_PORT   the "agent": one target connection per stream
//   nl-floor-relay in LISTEN_PORT MID_PORT    the "client": one stream per accepted connection
//
// Three processes, one persistent TLS 1.3 link (AES-128-GCM, OpenSSL, as nl uses) on each
// side of the middle one, many streams inside, the first bytes sent with the OPEN. Each
// process is one epoll loop over plain system calls: no framework, no per-stream state
// beyond a descriptor, no flow control (writes block, so one slow reader stalls every
// stream: that is what a real relay must not do). Whatever nl spends per connection above
// this, it spends in its own code.
//
// Frames on a link: u32 stream id, u8 type, u8 zero, u16 payload length, payload.
// Everything listens and connects on 127.0.0.1 only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

enum : std::uint8_t { OPEN = 1, DATA = 2, FIN = 3, RST = 4 };
constexpr std::size_t header = 8;
constexpr std::size_t chunk = 16 * 1024;
constexpr std::size_t link_buffer = 256 * 1024;
constexpr std::uint32_t max_streams = 65536;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) die("listen");
  return fd;
}

// Blocking connect: on loopback the handshake completes inside the call.
int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  no_delay(fd);
  return fd;
}

bool write_all(int fd, const char* p, std::size_t n) {
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

SSL_CTX* tls_context(bool server, const char* cert, const char* key) {
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

link_t make_link(int fd, SSL_CTX* ctx, bool server) {
  link_t l{fd, nullptr};
  if (ctx != nullptr) {
    l.ssl = SSL_new(ctx);
    SSL_set_fd(l.ssl, fd);
    if ((server ? SSL_accept(l.ssl) : SSL_connect(l.ssl)) != 1) die("TLS handshake");
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  return l;
}

void send_frame(link_t& l, std::uint32_t id, std::uint8_t type, const char* data, std::size_t len) {
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

// The two ends: local sockets on one side, the link to the middle on the other.
struct edge {
  bool dials;  // the agent side: an OPEN makes it connect to target_port
  int target_port = 0;
  link_t link;
  int ep = epoll_create1(0);
  std::vector<int> fd = std::vector<int>(max_streams, -1);
  std::vector<std::uint8_t> closed = std::vector<std::uint8_t>(max_streams, 0);  // bit 1 read, 2 write
  std::vector<char> in = std::vector<char>(link_buffer);
  std::size_t have = 0;

  void watch(int f, std::uint64_t tag) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, f, &e) != 0) die("epoll_ctl");
  }
  void shut(std::uint32_t id, std::uint8_t bit) {
    closed[id] |= bit;
    if (closed[id] == 3) {
      close(fd[id]);
      fd[id] = -1;
    }
  }
  // The stream is over both ways at once (a write failed here, or there): close now, so the
  // other end's writer gets an error instead of sending into the void.
  void abort(std::uint32_t id) {
    if ((closed[id] & 1) == 0) epoll_ctl(ep, EPOLL_CTL_DEL, fd[id], nullptr);
    closed[id] = 1;
    shut(id, 2);
  }
  void start(std::uint32_t id, int f) {
    fd[id] = f;
    closed[id] = 0;
    watch(f, id);
  }
  // A local socket is readable: its bytes, or its EOF, go to the link.
  void local_readable(std::uint32_t id) {
    char buf[chunk];
    auto n = recv(fd[id], buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return;
    if (n > 0) {
      send_frame(link, id, DATA, buf, static_cast<std::size_t>(n));
      return;
    }
    send_frame(link, id, FIN, nullptr, 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd[id], nullptr);
    shut(id, 1);
  }
  void frame(std::uint32_t id, std::uint8_t type, const char* p, std::size_t len) {
    if (type == OPEN && dials) {
      int f = dial(target_port);
      if (f < 0) {
        send_frame(link, id, FIN, nullptr, 0);
        return;
      }
      start(id, f);
    }
    if (fd[id] < 0) return;
    if (type == RST) {
      abort(id);
      return;
    }
    if ((closed[id] & 2) != 0) return;
    if (len != 0 && !write_all(fd[id], p, len)) {
      send_frame(link, id, RST, nullptr, 0);
      abort(id);
      return;
    }
    if (type == FIN) {
      shutdown(fd[id], SHUT_WR);
      shut(id, 2);
    }
  }
  void link_readable() {
    do {
      auto n = link.read(in.data() + have, in.size() - have);
      if (n < 0) std::exit(0);
      have += static_cast<std::size_t>(n);
      auto used = each_frame(in.data(), have, [this](auto id, auto type, auto p, auto len) { frame(id, type, p, len); });
      std::memmove(in.data(), in.data() + used, have - used);
      have -= used;
    } while (link.pending());
  }
  [[noreturn]] void run(int listen_fd) {
    constexpr std::uint64_t link_tag = max_streams, listen_tag = max_streams + 1;
    watch(link.fd, link_tag);
    if (listen_fd >= 0) watch(listen_fd, listen_tag);
    std::puts("ready");
    std::fflush(stdout);
    std::uint32_t next = 0;
    for (;;) {
      epoll_event ev[64];
      int k = epoll_wait(ep, ev, 64, -1);
      for (int i = 0; i < k; i++) {
        auto tag = ev[i].data.u64;
        if (tag == link_tag) {
          link_readable();
        } else if (tag == listen_tag) {
          int f = accept(listen_fd, nullptr, nullptr);  // blocking writes, MSG_DONTWAIT reads
          if (f < 0) continue;
          no_delay(f);
          auto id = next++ % max_streams;
          if (fd[id] >= 0) {  // 65 536 streams open at once: refuse
            close(f);
            continue;
          }
          // Early data: the OPEN carries what the application has already sent.
          char buf[chunk];
          auto n = recv(f, buf, sizeof buf, MSG_DONTWAIT);
          send_frame(link, id, OPEN, buf, n > 0 ? static_cast<std::size_t>(n) : 0);
          start(id, f);
        } else if (fd[tag] >= 0) {
          local_readable(static_cast<std::uint32_t>(tag));
        }
      }
    }
  }
};

// The middle: every whole frame from one link goes unchanged to the other.
[[noreturn]] void middle(int port, SSL_CTX* ctx) {
  int lfd = listen_on(port);
  std::puts("ready");
  std::fflush(stdout);
  link_t links[2];
  for (int got = 0; got < 2; got++) {
    int f = accept(lfd, nullptr, nullptr);
    char side = 0;
    if (f < 0 || read(f, &side, 1) != 1) die("accept");
    no_delay(f);
    links[side == 'i' ? 0 : 1] = make_link(f, ctx, true);
  }
  int ep = epoll_create1(0);
  for (std::uint64_t i = 0; i < 2; i++) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, links[i].fd, &e);
  }
  std::vector<char> buf[2] = {std::vector<char>(link_buffer), std::vector<char>(link_buffer)};
  std::size_t have[2] = {0, 0};
  for (;;) {
    epoll_event ev[2];
    int k = epoll_wait(ep, ev, 2, -1);
    for (int i = 0; i < k; i++) {
      auto s = ev[i].data.u64;
      do {
        auto n = links[s].read(buf[s].data() + have[s], buf[s].size() - have[s]);
        if (n < 0) std::exit(0);
        have[s] += static_cast<std::size_t>(n);
        auto used = each_frame(buf[s].data(), have[s], [](auto, auto, auto, auto) {});
        if (used != 0) links[1 - s].write(buf[s].data(), used);
        std::memmove(buf[s].data(), buf[s].data() + used, have[s] - used);
        have[s] -= used;
      } while (links[s].pending());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  bool plain = std::getenv("FLOOR_PLAIN") != nullptr;  // no TLS on the links, to see its cost
  if (mode == "mid" && argc == 5) middle(std::atoi(argv[2]), plain ? nullptr : tls_context(true, argv[3], argv[4]));
  if ((mode == "in" || mode == "out") && argc == 4) {
    bool in = mode == "in";
    int link_fd = dial(std::atoi(argv[in ? 3 : 2]));
    if (link_fd < 0) die("connect to mid");
    char side = in ? 'i' : 'o';
    if (!write_all(link_fd, &side, 1)) die("link");
    edge e{!in, in ? 0 : std::atoi(argv[3]), make_link(link_fd, plain ? nullptr : tls_context(false, nullptr, nullptr), false)};
    e.run(in ? listen_on(std::atoi(argv[2])) : -1);
  }
  std::fprintf(stderr,
               "usage: nl-floor-relay mid PORT CERT KEY | out MID_PORT TARGET_PORT | in LISTEN_PORT MID_PORT\n"
               "       (FLOOR_PLAIN=1: plain TCP links instead of TLS)\n");
  return 2;
}
