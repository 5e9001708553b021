// nl-netstack-bench: the TUN capture alone, terminating every flow inside this process, to
// measure netstack/ (TUN read/write, NAT, lwIP) without a gateway or agent behind it.
// Root; run it in a network namespace (tests/bench/tun_bench.py does). TCP flows to port 9
// are a discard sink (EOF once the app half-closes), to port 19 an endless source
// (chargen); anything else is refused.
//
//   nl-netstack-bench --route 10.99.0.0/24 [--mtu 9000] [--dev nlb0]
#include <utility>

#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "common/async.hpp"
#include "common/log.hpp"
#include "netstack/capture.hpp"
#include "netstack/routes.hpp"
#include "netstack/tun_device.hpp"

namespace {

using namespace nl;

// Discards writes; read() reports EOF once the writer half-closed.
class sink_stream final : public transport::stream {
public:
  explicit sink_stream(const asio::any_io_executor& ex) : ev_(ex) {}
  std::uint32_t id() const noexcept override { return 9; }
  awaitable<result<bytes>> read() override {
    while (!eof_ && !reset_) co_await ev_.wait();
    if (reset_) co_return fail(errc::aborted);
    co_return bytes();
  }
  awaitable<error_code> write(bytes) override { co_return error_code{}; }
  awaitable<error_code> shutdown_send() override {
    eof_ = true;
    ev_.notify();
    co_return error_code{};
  }
  void reset(errc, std::string_view) override {
    reset_ = true;
    ev_.notify();
  }
  const std::string& error_message() const noexcept override { return msg_; }

private:
  async_event ev_;
  bool eof_ = false, reset_ = false;
  std::string msg_;
};

// Produces 64 KiB chunks (contents unspecified) until reset.
class source_stream final : public transport::stream {
public:
  std::uint32_t id() const noexcept override { return 19; }
  awaitable<result<bytes>> read() override {
    if (reset_) co_return fail(errc::aborted);
    bytes b(64 * 1024);
    b.commit(b.capacity());
    co_return b;
  }
  awaitable<error_code> write(bytes) override { co_return error_code{}; }
  awaitable<error_code> shutdown_send() override { co_return error_code{}; }
  void reset(errc, std::string_view) override { reset_ = true; }
  const std::string& error_message() const noexcept override { return msg_; }

private:
  bool reset_ = false;
  std::string msg_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nl-netstack-bench: the TUN capture alone (flows end inside this process)"};
  std::string dev = "nlb0";
  std::vector<std::string> routes;
  unsigned mtu = 1500;
  app.add_option("--dev", dev, "TUN device name");
  app.add_option("--route", routes, "CIDR to capture (repeatable)")->required();
  app.add_option("--mtu", mtu, "TUN MTU");
  CLI11_PARSE(app, argc, argv);
  nl::init_logging("nl-netstack-bench", "info");

  asio::io_context io(1);
  auto tun = netstack::tun_device::open(io.get_executor(), dev);
  if (!tun) {
    std::cerr << "nl-netstack-bench: " << tun.error() << "\n";
    return 1;
  }
  netstack::route_guard guard;
  if (auto e = netstack::bring_up(tun->name(), mtu, nullptr); !e.empty()) {
    std::cerr << "nl-netstack-bench: " << e << "\n";
    return 1;
  }
  for (auto& r : routes) {
    if (auto e = guard.route_via(r, tun->name()); !e.empty()) {
      std::cerr << "nl-netstack-bench: " << e << "\n";
      return 1;
    }
  }
  netstack::capture_options opt;
  opt.mtu = mtu;
  opt.fake_dns = false;
  opt.gso = tun->offload();
  auto ex = io.get_executor();
  auto& device = *tun;
  netstack::capture cap(
      ex, opt,
      [ex](proto::target d) -> awaitable<transport::open_outcome> {
        transport::open_outcome o;
        if (d.port == 9) {
          o.stream = std::make_unique<sink_stream>(ex);
        } else if (d.port == 19) {
          o.stream = std::make_unique<source_stream>();
        } else {
          o.error = make_error_code(errc::refused);
        }
        co_return o;
      },
      [&device](std::span<const std::byte> p, const netstack::gso_request& g) { device.write(p, g); });
  asio::co_spawn(io, device.run([&cap](std::span<std::byte> p) { cap.input(p); }, mtu), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code&, int) {
    cap.stop();
    device.close();
    io.stop();
  });
  spdlog::info("capturing on {} (mtu {}): ready", device.name(), mtu);
  io.run();
  return 0;
}
