// nl-floor-asio: nl-floor-relay's relay (same wire, same three roles and arguments) on
// nl's event loop, Asio 1.18 with completion callbacks: no coroutines, no Beast, no per-
// stream events. Row tests/bench/rows/86-floor-asio.sh, not among the default rows. Next to
// floor-3tls it shows what the event loop itself costs per connection; next to nl-forward,
// what a hot path written this way on Asio could reach. Not a product and not installed.
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "floor_wire.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace floor_wire;

tcp::endpoint at(int port) { return {asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)}; }

// A link on an Asio socket: waits for readability, then drains it with frame_reader.
struct asio_link {
  tcp::socket sock;
  link_t l;
  frame_reader in;
  std::function<void(const char*, std::size_t)> batch;

  asio_link(tcp::socket s, SSL_CTX* ctx, bool server, std::function<void(const char*, std::size_t)> b)
      : sock(std::move(s)), l(make_link(sock.native_handle(), ctx, server)), batch(std::move(b)) {
    sock.set_option(tcp::no_delay(true));
  }
  void start() {
    if (!in.drain(l, batch)) std::exit(0);
    sock.async_wait(tcp::socket::wait_read, [this](error_code ec) {
      if (!ec) start();
    });
  }
};

struct conn : std::enable_shared_from_this<conn> {
  tcp::socket sock;
  std::uint32_t id;
  link_t& link;
  bool write_closed = false;
  char buf[chunk];

  conn(tcp::socket s, std::uint32_t i, link_t& l) : sock(std::move(s)), id(i), link(l) {
    sock.set_option(tcp::no_delay(true));
  }
  // Its bytes, then its EOF, go to the link; the handler keeps it alive until then.
  void read() {
    sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (!ec) {
        send_frame(self->link, self->id, DATA, self->buf, n);
        self->read();
        return;
      }
      send_frame(self->link, self->id, FIN, nullptr, 0);
    });
  }
};

// The agent and client ends: a map of streams, each a conn.
struct edge {
  asio::io_context& io;
  int target_port;  // nonzero: the agent side, an OPEN connects there
  std::unique_ptr<asio_link> link;
  std::unordered_map<std::uint32_t, std::shared_ptr<conn>> conns;

  void frame(std::uint32_t id, std::uint8_t type, const char* p, std::size_t len) {
    if (type == OPEN && target_port != 0) {
      tcp::socket s(io);
      error_code ec;
      s.connect(at(target_port), ec);
      if (ec) {
        send_frame(link->l, id, FIN, nullptr, 0);
        return;
      }
      auto c = std::make_shared<conn>(std::move(s), id, link->l);
      conns.emplace(id, c);
      c->read();
    }
    auto it = conns.find(id);
    if (it == conns.end()) return;
    conn& c = *it->second;
    error_code ec;
    if (type == RST) {
      c.sock.close(ec);  // ends its read, which sends nothing more than a FIN the peer ignores
      conns.erase(it);
      return;
    }
    if (len != 0 && asio::write(c.sock, asio::buffer(p, len), ec) != len) {
      send_frame(link->l, id, RST, nullptr, 0);
      c.sock.close(ec);
      conns.erase(it);
      return;
    }
    if (type == FIN) {
      c.sock.shutdown(tcp::socket::shutdown_send, ec);
      conns.erase(it);  // the read handler holds the socket until its own EOF
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  asio::io_context io(1);
  if (mode == "mid" && argc == 5) {
    SSL_CTX* ctx = tls_context(true, argv[3], argv[4]);
    tcp::acceptor acc(io, at(std::atoi(argv[2])));
    std::puts("ready");
    std::fflush(stdout);
    std::unique_ptr<asio_link> links[2];
    for (int got = 0; got < 2; got++) {
      tcp::socket s = acc.accept();
      char side = 0;
      asio::read(s, asio::buffer(&side, 1));
      int me = side == 'i' ? 0 : 1;
      links[me] = std::make_unique<asio_link>(std::move(s), ctx, true, [&links, me](const char* f, std::size_t n) {
        links[1 - me]->l.write(f, n);
      });
    }
    links[0]->start();
    links[1]->start();
    io.run();
    return 0;
  }
  if ((mode == "in" || mode == "out") && argc == 4) {
    bool in = mode == "in";
    tcp::socket s(io);
    s.connect(at(std::atoi(argv[in ? 3 : 2])));
    char side = in ? 'i' : 'o';
    asio::write(s, asio::buffer(&side, 1));
    edge e{io, in ? 0 : std::atoi(argv[3]), nullptr, {}};
    e.link = std::make_unique<asio_link>(std::move(s), tls_context(false, nullptr, nullptr), false,
                                         [&e](const char* f, std::size_t n) {
                                           each_frame(f, n, [&e](auto id, auto type, auto p, auto len) {
                                             e.frame(id, type, p, len);
                                           });
                                         });
    e.link->start();
    std::unique_ptr<tcp::acceptor> acc;
    std::function<void()> accept_next;
    std::uint32_t next = 0;
    if (in) {
      acc = std::make_unique<tcp::acceptor>(io, at(std::atoi(argv[2])));
      accept_next = [&] {
        acc->async_accept([&](error_code ec, tcp::socket a) {
          if (!ec) {
            auto c = std::make_shared<conn>(std::move(a), next++ % max_streams, e.link->l);
            // Early data: the OPEN carries what the application has already sent.
            char buf[chunk];
            auto n = ::recv(c->sock.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
            send_frame(e.link->l, c->id, OPEN, buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            e.conns[c->id] = c;
            c->read();
          }
          accept_next();
        });
      };
      accept_next();
    }
    std::puts("ready");
    std::fflush(stdout);
    io.run();
    return 0;
  }
  std::fprintf(stderr, "usage: nl-floor-asio mid PORT CERT KEY | out MID_PORT TARGET_PORT | in LISTEN_PORT MID_PORT\n");
  return 2;
}
