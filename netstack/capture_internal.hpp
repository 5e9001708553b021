// The capture engine's internals (netstack/): capture::impl, which owns lwIP, the NAT
// and the flow maps (capture.cpp), and the TCP and UDP flows that carry one captured
// connection or datagram flow over a stream each (capture_flows.cpp).
#pragma once

#include "netstack/capture.hpp"

#include <deque>
#include <tuple>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "common/async.hpp"
#include "netstack/dns.hpp"
#include "netstack/nat.hpp"
#include "netstack/packet.hpp"
#include "transport/datagram.hpp"

extern "C" {
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
}

namespace nl::netstack {

// "tcp 10.0.0.2:5000 -> 93.184.216.34:80", for logs.
std::string flow_text(const flow_key& k, const char* proto_name);

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

  void release_rx();
  // Unhooks lwIP's callbacks from this flow.
  void detach();
  // RST to the app (not from inside an lwIP callback).
  void abort_pcb();
  // Resets both sides (the app with a RST, the stream with `code`) and wakes both relays.
  void kill(errc code, std::string_view why);
  // Opens the stream for the held SYN; on success lets lwIP answer it, else refuses it.
  awaitable<void> connect();
  // lwIP accepted the app's connection: hook its callbacks and start the relays.
  void attach(tcp_pcb* p);
  awaitable<void> run();
  // Opens lwIP's receive window by `n` bytes.
  void recved(std::size_t n);

  // app -> stream: data leaves lwIP's window only once the stream took it.
  awaitable<void> uplink();

  // stream -> app: written into lwIP only as its send buffer frees.
  awaitable<void> downlink();
};

// ---- UDP flows ----

struct udp_flow : std::enable_shared_from_this<udp_flow> {
  udp_flow(capture::impl& o, flow_key k, proto::target d) : owner(o), key(k), dest(std::move(d)), dgrams(o.ex) {}
  capture::impl& owner;
  flow_key key;
  proto::target dest;
  std::vector<std::byte> first;  // the first packet (quoted in an ICMP error if the open fails)
  transport::datagram_flow dgrams;

  // Opens the stream (or answers the first packet with an ICMP error) and relays
  // datagrams until the flow is idle; then removes itself from the map.
  awaitable<void> run();
  void erase();
};

}  // namespace nl::netstack
