#include "netstack/capture.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <tuple>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "common/async.hpp"
#include "common/units.hpp"
#include "netstack/dns.hpp"
#include "netstack/nat.hpp"
#include "netstack/packet.hpp"
#include "transport/datagram.hpp"
#include "transport/relay.hpp"

extern "C" {
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
}

// lwIP's platform hooks (see netstack/lwip/arch/cc.h).
extern "C" {
u32_t sys_now(void) {
  using namespace std::chrono;
  return static_cast<u32_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}
void nl_lwip_diag(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  spdlog::debug("lwip: {}", line);
}
void nl_lwip_assert(const char* msg, const char* file, int line) {
  spdlog::critical("lwIP assertion failed at {}:{}: {}", file, line, msg);
  std::abort();
}
uint16_t nl_lwip_chksum(const void* data, int len) {
  return nl::netstack::checksum_native(std::span(static_cast<const std::byte*>(data), static_cast<std::size_t>(len)));
}
uint32_t nl_lwip_rand(void) {
  static std::mt19937 gen{std::random_device{}()};
  return gen();
}
}

namespace nl::netstack {
namespace {

constexpr std::uint16_t listen_port = 7;      // lwIP's one listening port (behind the NAT)
constexpr auto accept_deadline = std::chrono::seconds(20);  // app must finish its handshake by then
constexpr std::uint32_t dns_ttl = 10;         // seconds; fake addresses may be recycled later

bool lwip_started = false;
capture::impl* active = nullptr;

ip_address address_of(const ip_addr_t& a) {
  if (IP_IS_V6_VAL(a)) {
    return ip_address::from_bytes(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(ip_2_ip6(&a)->addr), 16));
  }
  return ip_address::from_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&ip_2_ip4(&a)->addr), 4));
}

proto::target make_target(std::string host, std::uint16_t port, proto::transport_protocol p) {
  proto::target t;
  t.host = std::move(host);
  t.port = port;
  t.protocol = p;
  return t;
}

std::string flow_text(const flow_key& k, const char* proto_name) {
  return fmt::format("{} {} -> {}", proto_name, host_port{k.src.to_string(), k.sport}.to_string(),
                     host_port{k.dst.to_string(), k.dport}.to_string());
}

}  // namespace

struct tcp_flow;
struct udp_flow;

struct capture::impl : std::enable_shared_from_this<capture::impl> {
  impl(asio::any_io_executor e, capture_options o, open_function op, output_function out)
      : ex(std::move(e)),
        opt(std::move(o)),
        open(std::move(op)),
        output(std::move(out)),
        nat(nat_config{opt.lwip_v4, opt.lwip_v4_prefix, opt.lwip_v6, opt.lwip_v6_prefix, opt.max_tcp_flows,
                       opt.tcp_idle_timeout, opt.nat_linger}),
        fake(opt.dns_v4, opt.dns_v4_prefix, opt.dns_v6, opt.dns_v6_prefix, 65536),
        lwip_timer(ex),
        sweep_timer(ex) {}

  void start();
  void stop();
  void input(std::span<std::byte> pkt);

  void tcp_input(std::span<std::byte> pkt, packet_info& info);
  void udp_input(std::span<std::byte> pkt, packet_info& info);
  void to_lwip(std::span<std::byte> pkt, packet_info& info, const nat_entry& e);
  err_t from_lwip(pbuf* p);
  void emit(std::span<const std::byte> pkt, const gso_request& gso = {}) {
    ++counters.packets_out;
    output(pkt, gso);
  }
  // Tells the app its connect failed, in the way that matches the agent's answer.
  void refuse(std::span<const std::byte> syn, errc why);
  std::optional<proto::target> destination(const ip_address& dst, std::uint16_t port, proto::transport_protocol p);
  void arm_lwip_timer();
  void arm_sweep_timer();
  void finish_tcp(std::uint64_t id, bool linger);

  asio::any_io_executor ex;
  capture_options opt;
  open_function open;
  output_function output;
  nat_table nat;
  dns::fake_ip_pool fake;
  netif nif{};
  tcp_pcb* listener = nullptr;
  asio::steady_timer lwip_timer, sweep_timer;
  std::unordered_map<std::uint64_t, std::shared_ptr<tcp_flow>> tcp;
  std::unordered_map<flow_key, std::shared_ptr<udp_flow>, flow_key_hash> udp;
  std::vector<std::byte> outbuf;
  capture_stats counters;
  std::tuple<std::size_t, std::size_t, std::size_t> last_logged{};
  bool stopped = false;
};

// ---- TCP flows ----

struct tcp_flow : std::enable_shared_from_this<tcp_flow> {
  enum class state { opening, accepting, open, done };

  tcp_flow(capture::impl& o, std::uint64_t i, flow_key k, proto::target d)
      : owner(o), id(i), key(k), dest(std::move(d)), rx_ready(o.ex), tx_space(o.ex) {}
  ~tcp_flow() { release_rx(); }

  capture::impl& owner;
  std::uint64_t id;
  flow_key key;
  proto::target dest;
  std::vector<std::byte> syn;  // the app's SYN, held until the agent answers
  state st = state::opening;
  std::unique_ptr<transport::stream> stream;
  tcp_pcb* pcb = nullptr;
  std::deque<pbuf*> rxq;       // from the app, not yet written to the stream
  bool rx_eof = false;
  bool dead = false;           // reset by either side
  async_event rx_ready, tx_space;
  std::optional<watchdog> accept_watch;

  void release_rx() {
    for (auto* p : rxq) pbuf_free(p);
    rxq.clear();
  }

  void detach() {
    if (pcb) {
      tcp_arg(pcb, nullptr);
      tcp_recv(pcb, nullptr);
      tcp_sent(pcb, nullptr);
      tcp_err(pcb, nullptr);
    }
  }
  // RST to the app (not from inside an lwIP callback).
  void abort_pcb() {
    if (pcb) {
      detach();
      tcp_abort(pcb);
      pcb = nullptr;
    }
  }
  void kill(errc code, std::string_view why) {
    if (dead) return;
    dead = true;
    abort_pcb();
    if (stream) stream->reset(code, why);
    rx_ready.notify();
    tx_space.notify();
  }

  awaitable<void> connect() {
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

  void attach(tcp_pcb* p) {
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

  awaitable<void> run() {
    auto self = shared_from_this();
    auto keep = owner.shared_from_this();
    co_await when_both(uplink(), downlink());
    owner.finish_tcp(id, true);
  }

  void recved(std::size_t n) {
    while (pcb && n) {
      auto k = static_cast<u16_t>(std::min<std::size_t>(n, 0xffff));
      tcp_recved(pcb, k);
      n -= k;
    }
  }

  // app -> stream: data leaves lwIP's window only once the stream took it.
  awaitable<void> uplink() {
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

  // stream -> app: written into lwIP only as its send buffer frees.
  awaitable<void> downlink() {
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
};

// ---- UDP flows ----

struct udp_flow : std::enable_shared_from_this<udp_flow> {
  udp_flow(capture::impl& o, flow_key k, proto::target d) : owner(o), key(k), dest(std::move(d)), dgrams(o.ex) {}
  capture::impl& owner;
  flow_key key;
  proto::target dest;
  std::vector<std::byte> first;  // the first packet (quoted in an ICMP error if the open fails)
  transport::datagram_flow dgrams;

  awaitable<void> run() {
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
  void erase() {
    if (auto it = owner.udp.find(key); it != owner.udp.end() && it->second.get() == this) {
      owner.udp.erase(it);
    }
  }
};

// ---- the engine ----

void capture::impl::start() {
  if (!lwip_started) {
    lwip_init();
    lwip_started = true;
  }
  ip4_addr_t addr, mask, gw;
  IP4_ADDR(&addr, opt.lwip_v4.b[0], opt.lwip_v4.b[1], opt.lwip_v4.b[2], opt.lwip_v4.b[3]);
  auto m = opt.lwip_v4_prefix ? ~std::uint32_t{0} << (32 - opt.lwip_v4_prefix) : 0;
  ip4_addr_set_u32(&mask, lwip_htonl(m));
  ip4_addr_set_any(&gw);
  netif_add(&nif, &addr, &mask, &gw, this, [](netif* n) -> err_t {
    auto* self = static_cast<impl*>(n->state);
    // With offload lwIP may send up to TCP_MSS per segment; the kernel cuts them to the MTU.
    n->mtu = static_cast<u16_t>(self->opt.gso ? 65535 : self->opt.mtu);
    n->output = [](netif* nn, pbuf* p, const ip4_addr_t*) { return static_cast<impl*>(nn->state)->from_lwip(p); };
    n->output_ip6 = [](netif* nn, pbuf* p, const ip6_addr_t*) { return static_cast<impl*>(nn->state)->from_lwip(p); };
    n->name[0] = 'n';
    n->name[1] = 'l';
    return ERR_OK;
  }, ip_input);
  ip6_addr_t a6;
  std::memcpy(a6.addr, opt.lwip_v6.b.data(), 16);
  netif_ip6_addr_set(&nif, 0, &a6);
  netif_ip6_addr_set_state(&nif, 0, IP6_ADDR_PREFERRED);
  netif_set_default(&nif);
  netif_set_link_up(&nif);
  netif_set_up(&nif);

  auto* p = tcp_new_ip_type(IPADDR_TYPE_ANY);
  tcp_bind(p, IP_ANY_TYPE, listen_port);
  listener = tcp_listen_with_backlog(p, 255);
  tcp_arg(listener, this);
  tcp_accept(listener, [](void* arg, tcp_pcb* pcb, err_t err) -> err_t {
    auto* self = static_cast<impl*>(arg);
    if (err != ERR_OK || !pcb) return ERR_VAL;
    auto* e = self->nat.find_fake(address_of(pcb->remote_ip));
    auto it = e ? self->tcp.find(e->id) : self->tcp.end();
    if (it == self->tcp.end() || it->second->st != tcp_flow::state::accepting) {
      tcp_abort(pcb);
      return ERR_ABRT;
    }
    it->second->attach(pcb);
    return ERR_OK;
  });
  outbuf.resize(65536 + 64);
  arm_lwip_timer();
  arm_sweep_timer();
}

void capture::impl::arm_lwip_timer() {
  lwip_timer.expires_after(std::chrono::milliseconds(250));  // lwIP's TCP_TMR_INTERVAL
  lwip_timer.async_wait([w = weak_from_this()](const error_code& ec) {
    auto self = w.lock();
    if (ec || !self || self->stopped) return;
    sys_check_timeouts();
    self->arm_lwip_timer();
  });
}

void capture::impl::arm_sweep_timer() {
  sweep_timer.expires_after(std::chrono::seconds(1));
  sweep_timer.async_wait([w = weak_from_this()](const error_code& ec) {
    auto self = w.lock();
    if (ec || !self || self->stopped) return;
    for (auto id : self->nat.sweep(nat_clock::now())) {
      if (auto it = self->tcp.find(id); it != self->tcp.end()) {
        auto f = it->second;
        spdlog::debug("tun: {}: idle, closed", flow_text(f->key, "tcp"));
        f->kill(errc::timeout, "idle");
        self->tcp.erase(it);
      }
    }
    // For operators and the tests: the flow table as it changes.
    auto st = std::make_tuple(self->nat.size(), self->tcp.size(), self->udp.size());
    if (st != self->last_logged) {
      self->last_logged = st;
      spdlog::debug("tun flows: tcp {} (active {}), udp {}", std::get<0>(st), std::get<1>(st), std::get<2>(st));
    }
    self->arm_sweep_timer();
  });
}

void capture::impl::stop() {
  if (stopped) return;
  stopped = true;
  lwip_timer.cancel();
  sweep_timer.cancel();
  auto flows = std::move(tcp);
  for (auto& [id, f] : flows) {
    f->kill(errc::aborted, "capture stopped");
  }
  auto uflows = std::move(udp);
  for (auto& [k, f] : uflows) {
    f->dgrams.end(errc::aborted, "capture stopped");
  }
  if (listener) {
    tcp_arg(listener, nullptr);
    tcp_close(listener);
    listener = nullptr;
  }
  netif_remove(&nif);
}

void capture::impl::finish_tcp(std::uint64_t id, bool linger) {
  auto it = tcp.find(id);
  if (it == tcp.end()) return;
  auto f = it->second;
  f->st = tcp_flow::state::done;
  if (f->pcb) {
    f->detach();
    if (tcp_close(f->pcb) != ERR_OK) tcp_abort(f->pcb);
    f->pcb = nullptr;
  }
  f->release_rx();
  if (auto* e = nat.find_id(id)) {
    if (linger) {
      nat.linger(*e, nat_clock::now());
    } else {
      nat.erase(id);
    }
  }
  tcp.erase(it);
}

std::optional<proto::target> capture::impl::destination(const ip_address& dst, std::uint16_t port,
                                                        proto::transport_protocol p) {
  if (opt.fake_dns && fake.contains(dst)) {
    auto name = fake.name_of(dst);
    if (!name) return std::nullopt;
    return make_target(std::move(*name), port, p);
  }
  return make_target(dst.to_string(), port, p);
}

void capture::impl::refuse(std::span<const std::byte> pkt, errc why) {
  auto info = parse(pkt);
  if (!info) return;
  std::array<std::byte, 1400> buf;
  std::size_t n = 0;
  if (why == errc::refused && info->proto == ipproto::tcp) {
    n = build_tcp_rst(*info, buf);
  } else {
    std::uint8_t code;
    if (why == errc::denied) {
      code = info->version == 4 ? 13 : 1;  // administratively prohibited
    } else if (why == errc::refused) {
      code = info->version == 4 ? 3 : 4;   // UDP: port unreachable
    } else {
      code = info->version == 4 ? 1 : 3;   // host / address unreachable
    }
    n = build_icmp_unreachable(*info, pkt, code, buf);
  }
  if (n) emit(std::span(buf.data(), n));
}

void capture::impl::input(std::span<std::byte> pkt) {
  ++counters.packets_in;
  auto info = parse(pkt);
  if (!info) {
    ++counters.dropped;
    return;
  }
  // Multicast and broadcast (mDNS, SSDP, router solicitations under --default-route) have
  // no single destination behind the agent: not carried.
  bool group = info->dst.v6 ? info->dst.b[0] == 0xff
                            : (info->dst.b[0] & 0xf0) == 0xe0 || info->dst.v4_host() == 0xffffffffu;
  if (group) {
    ++counters.dropped;
    return;
  }
  if (info->proto == ipproto::tcp) {
    tcp_input(pkt.first(info->total_length), *info);
  } else if (info->proto == ipproto::udp) {
    udp_input(pkt.first(info->total_length), *info);
  } else {
    ++counters.dropped;  // ICMP and others: not carried
  }
}

void capture::impl::tcp_input(std::span<std::byte> pkt, packet_info& info) {
  flow_key k{info.src, info.dst, info.sport, info.dport};
  auto now = nat_clock::now();
  auto* e = nat.find(k);
  bool bare_syn = (info.tcp_flags & (tcpflag::syn | tcpflag::ack | tcpflag::rst)) == tcpflag::syn;
  if (e && e->closed_at && bare_syn) {
    nat.erase(e->id);  // the app reuses the 4-tuple of a closed flow: a new flow
    e = nullptr;
  }
  if (!e) {
    if (!bare_syn) {
      if (!(info.tcp_flags & tcpflag::rst)) refuse(pkt, errc::refused);  // no such flow: RST
      return;
    }
    auto dest = destination(info.dst, info.dport, proto::transport_protocol::tcp);
    if (!dest) {
      refuse(pkt, errc::host_unreachable);  // a fake address whose name was recycled
      return;
    }
    auto r = nat.insert(k, now);
    if (!r) {
      spdlog::warn("tun: {} TCP flows (the limit): refused {}", nat.size(), flow_text(k, "tcp"));
      refuse(pkt, errc::refused);
      return;
    }
    auto f = std::make_shared<tcp_flow>(*this, (*r)->id, k, std::move(*dest));
    f->syn.assign(pkt.begin(), pkt.end());
    tcp.emplace(f->id, f);
    asio::co_spawn(ex, f->connect(), asio::detached);
    return;
  }
  nat.touch(*e, now);
  if (auto it = tcp.find(e->id); it != tcp.end() && it->second->st == tcp_flow::state::opening) {
    return;  // still waiting for the agent: the SYN is held, retransmissions are dropped
  }
  to_lwip(pkt, info, *e);
}

void capture::impl::to_lwip(std::span<std::byte> pkt, packet_info& info, const nat_entry& e) {
  const auto& self_addr = info.version == 4 ? opt.lwip_v4 : opt.lwip_v6;
  if (!rewrite(pkt, info, e.fake, info.sport, self_addr, listen_port)) return;
  if (opt.gso && (info.tcp_flags & tcpflag::syn)) {
    set_tcp_mss(pkt, info, 65475);  // lwIP caps it at TCP_MSS; the kernel segments to the MTU
  }
  auto* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(info.total_length), PBUF_RAM);
  if (!p) {
    ++counters.dropped;
    return;
  }
  std::memcpy(p->payload, pkt.data(), info.total_length);
  if (nif.input(p, &nif) != ERR_OK) pbuf_free(p);
}

err_t capture::impl::from_lwip(pbuf* p) {
  std::size_t n = p->tot_len;
  if (n > outbuf.size()) return ERR_OK;
  pbuf_copy_partial(p, outbuf.data(), static_cast<u16_t>(n), 0);
  std::span<std::byte> pkt(outbuf.data(), n);
  auto info = parse(pkt);
  if (!info || info->proto != ipproto::tcp) return ERR_OK;
  auto* e = nat.find_fake(info->dst);
  if (!e) return ERR_OK;
  rewrite(pkt, *info, e->orig.dst, e->orig.dport, e->orig.src, e->orig.sport);
  gso_request gso;
  std::size_t mss = opt.mtu - (info->version == 4 ? 40 : 60);
  if (opt.gso && info->payload_length > mss) {
    gso.size = static_cast<std::uint16_t>(mss);
    gso.header_length = static_cast<std::uint16_t>(info->payload_offset);
    gso.l4_offset = static_cast<std::uint16_t>(info->l4_offset);
    gso.v6 = info->version == 6;
    auto partial = pseudo_header_partial(*info);
    auto field = info->l4_offset + 16;
    pkt[field] = std::byte(partial >> 8);
    pkt[field + 1] = std::byte(partial & 0xff);
  }
  emit(pkt, gso);
  return ERR_OK;
}

void capture::impl::udp_input(std::span<std::byte> pkt, packet_info& info) {
  auto payload = std::span<const std::byte>(pkt.data() + info.payload_offset, info.payload_length);
  if (opt.fake_dns && info.dport == 53) {
    auto q = dns::parse_query(payload);
    if (q && q->qclass == 1 && (q->qtype == dns::qtype::a || q->qtype == dns::qtype::aaaa)) {
      auto addr = fake.assign(q->name, q->qtype == dns::qtype::aaaa);
      auto answer = dns::build_answer(payload, *q, std::span(&addr, 1), dns_ttl);
      std::vector<std::byte> buf(answer.size() + 64);
      if (auto n = build_udp(info.dst, info.dport, info.src, info.sport, answer, buf)) emit(std::span(buf.data(), n));
      spdlog::debug("tun: dns {} {} -> {}", q->qtype == dns::qtype::a ? "A" : "AAAA", q->name, addr.to_string());
      return;
    }
    // Other questions go to the queried server through the agent, like any UDP.
  }
  flow_key k{info.src, info.dst, info.sport, info.dport};
  auto it = udp.find(k);
  if (it == udp.end()) {
    if (udp.size() >= opt.max_udp_flows) {
      ++counters.dropped;
      return;
    }
    auto dest = destination(info.dst, info.dport, proto::transport_protocol::udp);
    if (!dest) {
      refuse(pkt, errc::host_unreachable);
      return;
    }
    auto f = std::make_shared<udp_flow>(*this, k, std::move(*dest));
    f->first.assign(pkt.begin(), pkt.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(pkt.size(), 548)));
    it = udp.emplace(k, f).first;
    asio::co_spawn(ex, f->run(), asio::detached);
  }
  if (!it->second->dgrams.push(payload)) ++counters.dropped;
}

// ---- public face ----

capture::capture(asio::any_io_executor ex, capture_options opt, open_function open, output_function output)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opt), std::move(open), std::move(output))) {
  if (active) throw std::logic_error("one netstack::capture per process (lwIP is global)");
  active = impl_.get();
  impl_->start();
}

capture::~capture() {
  impl_->stop();
  active = nullptr;
}

void capture::input(std::span<std::byte> packet) { impl_->input(packet); }
void capture::stop() { impl_->stop(); }

capture_stats capture::stats() const {
  auto s = impl_->counters;
  s.tcp_flows = impl_->nat.size();
  s.tcp_active = impl_->tcp.size();
  s.udp_flows = impl_->udp.size();
  return s;
}

}  // namespace nl::netstack
