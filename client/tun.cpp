// `nl-client tun`: full capture. A TUN device gets routes for the chosen ranges (or two
// half-default routes per family with --default-route); every TCP and UDP flow into it
// becomes a stream to the agent (netstack/capture.hpp). The gateway's own addresses get
// host routes through the current uplink first, so the session never loops into the TUN.
// Everything is undone on exit (SIGINT/SIGTERM); the TUN routes go with the device anyway.
#include <utility>

#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <spdlog/spdlog.h>

#include "client/client.hpp"
#include "netstack/capture.hpp"
#include "netstack/routes.hpp"
#include "netstack/tun_device.hpp"

namespace nl::client {

namespace {

constexpr const char* dns_pool_v4 = "198.19.0.0/17";
constexpr const char* dns_pool_v6 = "fd6e:6c01::/96";

}  // namespace

awaitable<int> client::tun(std::string agent, tun_options o) {
  std::vector<netstack::cidr> ranges;
  for (auto& r : o.routes) {
    auto c = netstack::parse_cidr(r);
    if (!c) {
      std::cerr << "nl-client: --route '" << r << "' is not a CIDR range like 192.168.1.0/24 (host bits zero)\n";
      co_return 2;
    }
    ranges.push_back(*c);
  }
  if (o.default_route) {
    for (auto* r : {"0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"}) ranges.push_back(*netstack::parse_cidr(r));
  }
  if (ranges.empty()) {
    std::cerr << "nl-client: tun needs --route CIDR (repeatable) or --default-route\n";
    co_return 2;
  }
  if (o.mtu < 1280 || o.mtu > 65535) {
    std::cerr << "nl-client: --mtu must be 1280..65535\n";
    co_return 2;
  }
  auto dev = netstack::tun_device::open(io_.get_executor(), o.device, o.offload);
  if (!dev) {
    std::cerr << "nl-client: " << dev.error() << "\n";
    co_return 1;
  }
  auto name = dev->name();
  netstack::route_guard routes;
  auto fail = [&](const std::string& e) {
    std::cerr << "nl-client: " << e << "\n";
    routes.restore();
    dev->close();
    return 1;
  };
  bool v6 = false;
  if (auto e = netstack::bring_up(name, o.mtu, &v6); !e.empty()) {
    co_return fail(e);
  }
  if (!v6) {
    spdlog::warn("tun: no IPv6 on {} (IPv6 disabled here?): only IPv4 is captured", name);
  }

  // Keep the gateway off the TUN: a host route via today's uplink for each of its addresses
  // that a captured range covers.
  auto url = config::parse_gateway_url(cfg_.peer.gateway);
  if (url) {
    asio::ip::tcp::resolver res(io_);
    error_code ec;
    auto eps = co_await res.async_resolve(url->host, std::to_string(url->port), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return fail("cannot resolve the gateway " + url->host + ": " + ec.message());
    }
    for (auto& ep : eps) {
      auto a = netstack::ip_address::from_asio(ep.endpoint().address());
      bool covered = false;
      for (auto& r : ranges) covered = covered || r.contains(a);
      if (covered && (!a.v6 || v6)) {
        if (auto e = routes.bypass(a); !e.empty()) co_return fail(e);
        spdlog::info("tun: gateway address {} bypasses {}", a.to_string(), name);
      }
    }
  }
  std::vector<std::string> captured;
  auto add_route = [&](const std::string& cidr) { return routes.route_via(cidr, name); };
  for (auto& r : ranges) {
    if (r.addr.v6 && !v6) continue;
    if (auto e = add_route(r.to_string()); !e.empty()) co_return fail(e);
    captured.push_back(r.to_string());
  }
  if (o.fake_dns) {
    if (auto e = add_route(dns_pool_v4); !e.empty()) co_return fail(e);
    if (v6) {
      if (auto e = add_route(dns_pool_v6); !e.empty()) co_return fail(e);
    }
  }

  netstack::capture_options copt;
  copt.mtu = o.mtu;
  copt.fake_dns = o.fake_dns;
  copt.gso = dev->offload();
  copt.max_udp_flows = cfg_.udp.max_flows;
  copt.udp_idle_timeout = cfg_.udp.idle_timeout;
  auto& device = *dev;
  netstack::capture cap(
      // A coroutine lambda: `d` then lives in the coroutine frame (open() takes references).
      io_.get_executor(), copt,
      [this, agent](proto::target d) -> awaitable<transport::open_outcome> { co_return co_await open(agent, d); },
      [&device](std::span<const std::byte> p, const netstack::gso_request& g) { device.write(p, g); });
  start_link();
  asio::co_spawn(io_, device.run([&cap](std::span<std::byte> p) { cap.input(p); }, o.mtu), asio::detached);
  spdlog::info("tun {} up (mtu {}{}): capturing {}{} via agent {}; ready (Ctrl-C to stop and restore routes)", name,
               o.mtu, dev->offload() ? ", segmentation offload" : "", fmt::join(captured, ", "), o.fake_dns ? " and DNS to port 53 there" : "", agent);
  int rc = co_await serve_forever();
  auto st = cap.stats();
  cap.stop();
  device.close();
  routes.restore();
  spdlog::info("tun {} down: {} packets in, {} out; routes restored", name, st.packets_in, st.packets_out);
  co_return rc;
}

}  // namespace nl::client
