// The capture engine (netstack/capture_internal.hpp): lwIP's platform hooks, the NAT that
// steers every captured TCP flow to lwIP's one listening port, fake-IP DNS, and the
// packet path in (input) and out (from_lwip). The flows themselves: capture_flows.cpp.
#include "netstack/capture_internal.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "common/units.hpp"

extern "C" {
#include "lwip/init.h"
#include "lwip/ip.h"
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

}  // namespace

std::string flow_text(const flow_key& k, const char* proto_name) {
  return fmt::format("{} {} -> {}", proto_name, host_port{k.src.to_string(), k.sport}.to_string(),
                     host_port{k.dst.to_string(), k.dport}.to_string());
}

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
