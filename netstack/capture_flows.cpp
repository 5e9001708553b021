// Captured flows (netstack/capture_internal.hpp): a TCP flow opens its stream before
// lwIP answers the app's SYN, then relays both ways with lwIP's windows as backpressure;
// a UDP flow relays datagrams until it has been idle for udp_idle_timeout.
#include "netstack/capture_internal.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "common/units.hpp"
#include "transport/relay.hpp"

namespace nl::netstack {
namespace {

constexpr auto accept_deadline = std::chrono::seconds(20);  // app must finish its handshake by then

}  // namespace

void tcp_flow::release_rx() {
  for (auto* p : rxq) pbuf_free(p);
  rxq.clear();
}

void tcp_flow::detach() {
  if (pcb) {
    tcp_arg(pcb, nullptr);
    tcp_recv(pcb, nullptr);
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
  }
}

void tcp_flow::abort_pcb() {
  if (pcb) {
    detach();
    tcp_abort(pcb);
    pcb = nullptr;
  }
}

void tcp_flow::kill(errc code, std::string_view why) {
  if (dead) return;
  dead = true;
  abort_pcb();
  if (stream) stream->reset(code, why);
  rx_ready.notify();
  tx_space.notify();
}

awaitable<void> tcp_flow::connect() {
  auto self = shared_from_this();
  auto keep = owner.shared_from_this();
  auto out = co_await owner.open(dest);
  if (owner.stopped || dead) {
    if (out.stream) out.stream->reset(errc::aborted, "capture stopped");
    co_return;
  }
  if (!out.stream) {
    auto code = to_wire_code(out.error);
    spdlog::info("tun: {} ({}): {}{}", flow_text(key, "tcp"), host_port{dest.host, dest.port}.to_string(),
                 describe(code), out.message.empty() ? "" : ": " + out.message);
    owner.refuse(syn, code);
    st = state::done;
    owner.nat.erase(id);
    owner.tcp.erase(id);
    co_return;
  }
  stream = std::move(out.stream);
  st = state::accepting;
  auto* e = owner.nat.find_id(id);
  auto parsed = parse(syn);
  if (!e || !parsed) {
    kill(errc::aborted, "flow vanished");
    owner.finish_tcp(id, false);
    co_return;
  }
  // The agent connected: let lwIP answer the SYN. accept() attaches the pcb.
  std::weak_ptr<tcp_flow> weak = self;
  accept_watch.emplace(owner.ex, accept_deadline, [weak] {
    if (auto f = weak.lock(); f && f->st == state::accepting) {
      f->kill(errc::aborted, "the application did not complete its handshake");
      f->owner.finish_tcp(f->id, false);
    }
  });
  owner.to_lwip(syn, *parsed, *e);
  syn.clear();
  syn.shrink_to_fit();
}

void tcp_flow::attach(tcp_pcb* p) {
  pcb = p;
  st = state::open;
  if (accept_watch) accept_watch->cancel();
  tcp_arg(pcb, this);
  tcp_nagle_disable(pcb);
  tcp_recv(pcb, [](void* arg, tcp_pcb* tpcb, pbuf* pb, err_t) -> err_t {
    auto* f = static_cast<tcp_flow*>(arg);
    if (!f) {
      if (pb) {
        tcp_recved(tpcb, pb->tot_len);
        pbuf_free(pb);
      }
      return ERR_OK;
    }
    if (!pb) {
      f->rx_eof = true;
    } else if (f->dead) {
      tcp_recved(tpcb, pb->tot_len);
      pbuf_free(pb);
    } else {
      f->rxq.push_back(pb);
    }
    f->rx_ready.notify();
    return ERR_OK;
  });
  tcp_sent(pcb, [](void* arg, tcp_pcb*, u16_t) -> err_t {
    if (auto* f = static_cast<tcp_flow*>(arg)) f->tx_space.notify();
    return ERR_OK;
  });
  tcp_err(pcb, [](void* arg, err_t err) {
    auto* f = static_cast<tcp_flow*>(arg);
    if (!f) return;
    f->pcb = nullptr;  // lwIP freed it
    if (!f->dead) {
      f->dead = true;
      if (f->stream) f->stream->reset(errc::aborted, err == ERR_RST ? "reset by the application" : "connection aborted");
      f->rx_ready.notify();
      f->tx_space.notify();
    }
  });
  asio::co_spawn(owner.ex, run(), asio::detached);
}

awaitable<void> tcp_flow::run() {
  auto self = shared_from_this();
  auto keep = owner.shared_from_this();
  co_await when_both(uplink(), downlink());
  owner.finish_tcp(id, true);
}

void tcp_flow::recved(std::size_t n) {
  while (pcb && n) {
    auto k = static_cast<u16_t>(std::min<std::size_t>(n, 0xffff));
    tcp_recved(pcb, k);
    n -= k;
  }
}

awaitable<void> tcp_flow::uplink() {
  for (;;) {
    while (rxq.empty() && !rx_eof && !dead) {
      co_await rx_ready.wait();
    }
    if (dead) co_return;
    if (!rxq.empty()) {
      std::size_t n = 0, count = 0;
      for (auto* p : rxq) {
        if (count && n + p->tot_len > 256 * 1024) break;
        n += p->tot_len;
        ++count;
      }
      auto b = bytes::with_room(n, transport::relay_headroom, transport::relay_tailroom);
      auto* dst = static_cast<std::byte*>(b.prepare().data());
      for (std::size_t i = 0; i < count; ++i) {
        auto* p = rxq.front();
        rxq.pop_front();
        pbuf_copy_partial(p, dst, p->tot_len, 0);
        dst += p->tot_len;
        pbuf_free(p);
      }
      b.commit(n);
      if (auto ec = co_await stream->write(std::move(b))) {
        kill(errc::aborted, "stream failed");
        co_return;
      }
      recved(n);
      continue;
    }
    (void)co_await stream->shutdown_send();  // the app half-closed
    co_return;
  }
}

awaitable<void> tcp_flow::downlink() {
  for (;;) {
    auto r = co_await stream->read();
    if (!r) {
      if (!dead) {
        spdlog::debug("tun: {}: stream ended: {}{}", flow_text(key, "tcp"), r.error().message(),
                      stream->error_message().empty() ? "" : ": " + stream->error_message());
      }
      kill(errc::aborted, "stream failed");
      co_return;
    }
    if (r->empty()) {
      if (pcb && !dead) {
        tcp_shutdown(pcb, 0, 1);
        tcp_output(pcb);
      }
      co_return;
    }
    const auto* data = r->data();
    std::size_t left = r->size();
    while (left) {
      if (dead || !pcb) co_return;
      auto room = tcp_sndbuf(pcb);
      if (room == 0 || tcp_sndqueuelen(pcb) + 8 >= TCP_SND_QUEUELEN) {
        tcp_output(pcb);
        co_await tx_space.wait();
        continue;
      }
      auto n = static_cast<u16_t>(std::min<std::size_t>({left, static_cast<std::size_t>(room), 0xffff}));
      auto err = tcp_write(pcb, data, n, TCP_WRITE_FLAG_COPY | (left > n ? TCP_WRITE_FLAG_MORE : 0));
      if (err == ERR_MEM) {
        // Out of memory with room in the send buffer: nothing may be in flight to wake
        // us through tcp_sent, so retry after a moment.
        tcp_output(pcb);
        co_await sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (err != ERR_OK) {
        kill(errc::aborted, "lwIP refused data");
        co_return;
      }
      data += n;
      left -= n;
    }
    if (pcb) tcp_output(pcb);
  }
}

awaitable<void> udp_flow::run() {
  auto self = shared_from_this();
  auto keep = owner.shared_from_this();
  auto out = co_await owner.open(dest);
  if (!out.stream) {
    auto code = to_wire_code(out.error);
    spdlog::info("tun: {} ({}): {}{}", flow_text(key, "udp"), host_port{dest.host, dest.port}.to_string(),
                 describe(code), out.message.empty() ? "" : ": " + out.message);
    if (!owner.stopped) owner.refuse(first, code);
    erase();
    co_return;
  }
  first.clear();
  first.shrink_to_fit();
  std::vector<std::byte> buf;
  co_await dgrams.run(std::move(out.stream), [this, &buf](std::span<const std::byte> d) {
    buf.resize(d.size() + 64);
    auto n = build_udp(key.dst, key.dport, key.src, key.sport, d, buf);
    if (n) owner.emit(std::span(buf.data(), n));
  }, owner.opt.udp_idle_timeout, nullptr);
  erase();
}

void udp_flow::erase() {
  if (auto it = owner.udp.find(key); it != owner.udp.end() && it->second.get() == this) {
    owner.udp.erase(it);
  }
}

}  // namespace nl::netstack
