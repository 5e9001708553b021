// nl-floor-asio: nl-floor-relay's relay (same wire, same three roles and arguments) written
// the way nl is written: Asio 1.18 with C++20 coroutines (one per link reader, one per local
// connection reader), but each message handled inline where it is read: no Beast, no
// per-stream events, no hand-off between coroutines. Row tests/bench/rows/86-floor-asio.sh,
// not among the default rows. Next to floor-3tls it shows what Asio and its coroutines cost
// per connection; next to nl-forward, what nl's own per-message path costs. Not a product
// and not installed.
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <string_view>
#include <unordered_map>

#include "floor_wire.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using asio::awaitable;
using asio::use_awaitable;
using namespace floor_wire;

namespace {

tcp::endpoint at(int port) { return {asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)}; }

// A local connection: shared by the map of streams and its reader coroutine.
struct conn {
  tcp::socket sock;
  std::uint32_t id;
};

// The agent and client ends: the link to the middle and a map of streams.
struct edge {
  asio::io_context& io;
  int target_port;  // nonzero: the agent side, an OPEN connects there
  tcp::socket sock;
  link_t l;
  std::unordered_map<std::uint32_t, std::shared_ptr<conn>> conns;

  // Its bytes, then its EOF, go to the link.
  awaitable<void> conn_reader(std::shared_ptr<conn> c) {
    char buf[chunk];
    for (;;) {
      error_code ec;
      auto n = co_await c->sock.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      send_frame(l, c->id, DATA, buf, n);
    }
    send_frame(l, c->id, FIN, nullptr, 0);
  }

  void frame(std::uint32_t id, std::uint8_t type, const char* p, std::size_t len) {
    if (type == OPEN && target_port != 0) {
      tcp::socket s(io);
      error_code ec;
      s.connect(at(target_port), ec);
      if (ec) {
        send_frame(l, id, FIN, nullptr, 0);
        return;
      }
      s.set_option(tcp::no_delay(true));
      auto c = std::make_shared<conn>(conn{std::move(s), id});
      conns.emplace(id, c);
      asio::co_spawn(io, conn_reader(c), asio::detached);
    }
    auto it = conns.find(id);
    if (it == conns.end()) return;
    conn& c = *it->second;
    error_code ec;
    if (type == RST) {
      c.sock.close(ec);
      conns.erase(it);
      return;
    }
    if (len != 0 && asio::write(c.sock, asio::buffer(p, len), ec) != len) {
      send_frame(l, id, RST, nullptr, 0);
      c.sock.close(ec);
      conns.erase(it);
      return;
    }
    if (type == FIN) {
      c.sock.shutdown(tcp::socket::shutdown_send, ec);
      conns.erase(it);  // its reader coroutine holds it until its own EOF
    }
  }

  awaitable<void> acceptor(int port) {
    tcp::acceptor acc(io, at(port));
    std::uint32_t next = 0;
    for (;;) {
      tcp::socket a = co_await acc.async_accept(use_awaitable);
      a.set_option(tcp::no_delay(true));
      auto c = std::make_shared<conn>(conn{std::move(a), next++ % max_streams});
      char buf[chunk];
      auto n = ::recv(c->sock.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      send_frame(l, c->id, OPEN, buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      conns[c->id] = c;
      asio::co_spawn(io, conn_reader(c), asio::detached);
    }
  }
};

// Reads link `l` on socket `s` for as long as it lasts, handing each read's whole frames to
// batch(frames, bytes); the process ends with the link.
template <class Batch>
awaitable<void> read_link(tcp::socket& s, link_t& l, Batch batch) {
  frame_reader in;
  for (;;) {
    if (!in.drain(l, batch)) std::exit(0);
    error_code ec;
    co_await s.async_wait(tcp::socket::wait_read, asio::redirect_error(use_awaitable, ec));
    if (ec) std::exit(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  asio::io_context io(1);
  if (mode == "mid" && argc == 5) {
    SSL_CTX* ctx = tls_context(true, argv[3], argv[4]);
    tcp::acceptor acc(io, at(std::atoi(argv[2])));
    std::puts("ready");
    std::fflush(stdout);
    std::unique_ptr<tcp::socket> socks[2];
    link_t links[2];
    for (int got = 0; got < 2; got++) {
      tcp::socket s = acc.accept();
      char side = 0;
      asio::read(s, asio::buffer(&side, 1));
      int me = side == 'i' ? 0 : 1;
      s.set_option(tcp::no_delay(true));
      socks[me] = std::make_unique<tcp::socket>(std::move(s));
      links[me] = make_link(socks[me]->native_handle(), ctx, true);
    }
    // The middle: every whole frame from one link goes unchanged to the other.
    for (int i = 0; i < 2; i++) {
      link_t* to = &links[1 - i];
      asio::co_spawn(io, read_link(*socks[i], links[i], [to](const char* f, std::size_t n) { to->write(f, n); }),
                     asio::detached);
    }
    io.run();
    return 0;
  }
  if ((mode != "in" && mode != "out") || argc != 4) {
    std::fprintf(stderr, "usage: nl-floor-asio mid PORT CERT KEY | out MID_PORT TARGET_PORT | in LISTEN_PORT MID_PORT\n");
    return 2;
  }
  bool in = mode == "in";
  tcp::socket s(io);
  s.connect(at(std::atoi(argv[in ? 3 : 2])));
  s.set_option(tcp::no_delay(true));
  char side = in ? 'i' : 'o';
  asio::write(s, asio::buffer(&side, 1));
  auto l = make_link(s.native_handle(), tls_context(false, nullptr, nullptr), false);
  edge e{io, in ? 0 : std::atoi(argv[3]), std::move(s), l, {}};
  asio::co_spawn(io,
                 read_link(e.sock, e.l,
                           [&e](const char* f, std::size_t n) {
                             each_frame(f, n, [&e](auto id, auto type, auto p, auto len) { e.frame(id, type, p, len); });
                           }),
                 asio::detached);
  if (in) asio::co_spawn(io, e.acceptor(std::atoi(argv[2])), asio::detached);
  std::puts("ready");
  std::fflush(stdout);
  io.run();
}
