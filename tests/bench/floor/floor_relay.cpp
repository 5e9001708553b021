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
// The wire is in floor_wire.hpp. Everything listens and connects on 127.0.0.1 only.
#include <sys/epoll.h>

#include <string_view>
#include <vector>

#include "floor_wire.hpp"

namespace {

using namespace floor_wire;

// The two ends: local sockets on one side, the link to the middle on the other.
struct edge {
  bool dials;  // the agent side: an OPEN makes it connect to target_port
  int target_port = 0;
  link_t link;
  int ep = epoll_create1(0);
  std::vector<int> fd = std::vector<int>(max_streams, -1);
  std::vector<std::uint8_t> closed = std::vector<std::uint8_t>(max_streams, 0);  // bit 1 read, 2 write
  frame_reader in;

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
    auto ok = in.drain(link, [this](const char* frames, std::size_t bytes) {
      each_frame(frames, bytes, [this](auto id, auto type, auto p, auto len) { frame(id, type, p, len); });
    });
    if (!ok) std::exit(0);
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
  frame_reader in[2];
  for (;;) {
    epoll_event ev[2];
    int k = epoll_wait(ep, ev, 2, -1);
    for (int i = 0; i < k; i++) {
      auto s = ev[i].data.u64;
      link_t& to = links[1 - s];
      if (!in[s].drain(links[s], [&to](const char* frames, std::size_t bytes) { to.write(frames, bytes); })) {
        std::exit(0);
      }
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
