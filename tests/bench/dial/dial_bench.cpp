// nl-dial-bench: cold connect, measured inside one process so that process start and
// config loading are not part of it (tests/bench/transport_bench.py reports both). Each
// round builds a new link to the gateway exactly as nl-client does (no session, TLS
// state or QUIC token kept from the round before), opens one stream to the agent and
// waits for the first byte the target sends; then closes the session.
//
//   nl-dial-bench --gateway wss://127.0.0.1:PORT --token-file F --ca CA --transport quic|ws
//                 --agent home --target 127.0.0.1:PORT [--rounds 20]
//
// Prints one line per round and then "median session_ms=... first_byte_ms=... rounds=N
// first_round_ms=...".
#include <utility>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/async.hpp"
#include "config/config.hpp"
#include "common/units.hpp"
#include "proto/frame.hpp"
#include "transport/link.hpp"
#include "transport/quic/link_quic.hpp"

namespace {

using namespace nl;
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct round_times {
  double session_ms = 0, first_byte_ms = 0;
};

awaitable<std::optional<round_times>> one_round(config::peer_config peer, std::string token, std::string agent,
                                                proto::target dest) {
  auto ex = co_await asio::this_coro::executor;
  auto t0 = clock_type::now();
  transport::link link(ex, transport::quic::link_options_for(peer, "/v1/client", token));
  bool ran = false;
  async_event ended(ex);
  asio::co_spawn(
      ex,
      [&]() -> awaitable<void> {
        (void)co_await link.run([](std::shared_ptr<transport::session> s) -> awaitable<void> {
          co_await s->wait_closed();
        });
        ran = true;
        ended.notify();
      },
      asio::detached);
  std::optional<round_times> out;
  auto s = co_await link.get(peer.connect_timeout);
  if (s) {
    round_times t;
    t.session_ms = ms_since(t0);
    auto o = co_await s->open(transport::make_open_request(dest, agent), peer.connect_timeout);
    if (o.stream) {
      auto r = co_await o.stream->read();
      if (r && !r->empty()) {
        t.first_byte_ms = ms_since(t0);
        out = t;
      }
    } else {
      std::cerr << "open failed: " << o.error.message() << " " << o.message << "\n";
    }
  } else {
    std::cerr << "no session within the connect timeout\n";
  }
  co_await link.shutdown();
  while (!ran) {
    co_await ended.wait();  // run() must be over before `link` goes
  }
  co_return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nl-dial-bench: cold connect to first byte, in one process"};
  std::string gateway, token_file, ca, transport = "quic", agent = "home", target;
  int rounds = 20;
  app.add_option("--gateway", gateway)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--transport", transport)->check(CLI::IsMember({"quic", "ws"}));
  app.add_option("--agent", agent);
  app.add_option("--target", target)->required();
  app.add_option("--rounds", rounds)->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::string token;
  std::getline(std::ifstream(token_file), token);
  auto cfg = config::parse_client(fmt::format("gateway: {}\ntransport: {}\ntls:\n  ca: {}\n", gateway, transport, ca),
                                  "flags");
  if (!cfg) {
    std::cerr << cfg.error().to_string() << "\n";
    return 2;
  }
  auto hp = nl::parse_host_port(target, false);
  if (!hp) {
    std::cerr << "--target: " << target << " is not HOST:PORT\n";
    return 2;
  }
  proto::target dest{hp->host, hp->port};
  asio::io_context io;
  std::vector<double> sess, first;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        for (int i = 0; i < rounds; ++i) {
          auto t = co_await one_round(cfg->peer, token, agent, dest);
          if (!t) {
            continue;
          }
          sess.push_back(t->session_ms);
          first.push_back(t->first_byte_ms);
          std::cout << fmt::format("round {} session_ms={:.2f} first_byte_ms={:.2f}\n", i, t->session_ms,
                                   t->first_byte_ms);
        }
      },
      asio::detached);
  io.run();
  if (first.empty()) {
    std::cerr << "no round reached the first byte\n";
    return 1;
  }
  // The first round also pays the one-time set-up of the process (TLS libraries, CA file).
  std::cout << fmt::format("median session_ms={:.2f} first_byte_ms={:.2f} rounds={} first_round_ms={:.2f}\n",
                           median(sess), median(first), first.size(), first.front());
  return 0;
}
