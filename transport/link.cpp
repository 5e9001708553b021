#include "transport/link.hpp"

#include <random>

#include <spdlog/spdlog.h>

namespace nl::transport {

link_options link_options_from(const config::peer_config& p, std::string endpoint, std::string token) {
  link_options o;
  o.dial.url = config::parse_gateway_url(p.gateway).value();
  o.dial.endpoint = std::move(endpoint);
  o.dial.token = std::move(token);
  o.dial.ca_file = p.tls.ca_file;
  o.dial.insecure = p.tls.insecure;
  o.dial.server_name = p.tls.server_name;
  o.dial.timeout = p.connect_timeout;
  o.dial.mux.initiator = true;
  o.dial.mux.keepalive = p.session.keepalive;
  o.dial.mux.keepalive_timeout = p.session.keepalive_timeout;
  o.dial.mux.window = p.session.window;
  o.dial.mux.max_streams = p.session.max_streams;
  o.dial.mux.log_name = "gateway session";
  o.backoff_initial = p.backoff_initial;
  o.backoff_max = p.backoff_max;
  o.quic_reprobe = p.quic_reprobe;
  o.mode = p.transport == "quic" ? transport_mode::quic
           : p.transport == "ws" ? transport_mode::ws
                                 : transport_mode::automatic;
  return o;
}

awaitable<dial_outcome> link::dial() {
  auto url = opts_.dial.url.to_string();
  if (!opts_.dial_quic || opts_.mode == transport_mode::ws) {
    co_return co_await ws::dial(opts_.dial);
  }
  if (opts_.mode == transport_mode::quic) {
    co_return co_await opts_.dial_quic(opts_.dial.timeout, false);
  }
  if (!opts_.dial.url.tls) {
    spdlog::debug("{}: QUIC needs TLS (wss://); using WebSocket", url);
    co_return co_await ws::dial(opts_.dial);
  }
  auto q = co_await opts_.dial_quic(std::min(opts_.quic_deadline, opts_.dial.timeout), false);
  if (q || q.error().code == errc::auth_failed) {
    co_return q;  // a refusal over QUIC is the gateway's answer: no point asking again over WebSocket
  }
  spdlog::info("QUIC to {} failed ({}); falling back to WebSocket", url, q.error().message);
  co_return co_await ws::dial(opts_.dial);
}

awaitable<void> link::reprobe(std::shared_ptr<session> s) {
  asio::steady_timer t(ex_);
  while (!stopped_ && s->is_open() && !s->is_draining()) {
    t.expires_after(opts_.quic_reprobe);
    error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped_ || !s->is_open() || s->is_draining()) break;
    auto q = co_await opts_.dial_quic(opts_.quic_deadline, true);
    bool reachable = q || q.error().code == errc::auth_failed;
    if (q) q->session->close(proto::goaway_code::normal, "probe");
    if (!reachable) {
      spdlog::debug("QUIC still unreachable: {}", q.error().message);
      continue;
    }
    if (s->stream_count() != 0) {
      spdlog::debug("QUIC is reachable again; moving when the session is idle");
      continue;
    }
    spdlog::info("QUIC is reachable again: moving the session from WebSocket to QUIC");
    migrating_ = true;
    s->close(proto::goaway_code::normal, "moving to QUIC");
    break;
  }
}

link::link(asio::any_io_executor ex, link_options o)
    : ex_(ex), opts_(std::move(o)), changed_(ex), backoff_timer_(ex) {}

std::shared_ptr<session> link::current() const {
  return current_ && current_->is_open() && !current_->is_draining() ? current_ : nullptr;
}

awaitable<std::shared_ptr<session>> link::get(std::chrono::milliseconds timeout) {
  if (auto s = current()) {
    co_return s;  // the usual case: no timer to arm and cancel for every stream
  }
  auto deadline = clock::now() + timeout;
  bool expired = false;
  watchdog wd(ex_, timeout, [this, &expired] {
    expired = true;
    changed_.notify();
  });
  while (!current() && !expired && !stopped_ && clock::now() < deadline) {
    co_await changed_.wait();
  }
  co_return current();
}

void link::stop() {
  stopped_ = true;
  backoff_timer_.cancel();
  if (current_) {
    current_->close(proto::goaway_code::normal, "shutting down");
  }
  changed_.notify();
}

awaitable<void> link::shutdown() {
  auto s = current_;
  stop();
  if (s) {
    co_await s->wait_closed();
  }
}

awaitable<link_result> link::run(std::function<awaitable<void>(std::shared_ptr<session>)> serve) {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = opts_.backoff_initial;
  auto url = opts_.dial.url.to_string();
  while (!stopped_) {
    auto r = co_await dial();
    if (stopped_) {
      if (r) {
        r->session->close(proto::goaway_code::normal, "shutting down");
      }
      break;
    }
    std::string why;
    if (!r) {
      if (r.error().code == errc::auth_failed) {
        spdlog::error("gateway refused the token: {}", r.error().message);
        co_return link_result{link_end::auth_failed, r.error().message};
      }
      why = r.error().message;
    } else {
      auto s = r->session;
      current_ = s;
      changed_.notify();
      spdlog::info("session up: {} as {} ({})", url, r->hello.identity, s->transport_name());
      auto started = clock::now();
      bool on_ws = s->transport_name() != "quic";
      if (on_ws && opts_.mode == transport_mode::automatic && opts_.dial_quic && opts_.dial.url.tls) {
        asio::co_spawn(ex_, reprobe(s), asio::detached);
      }
      co_await serve(s);
      co_await s->wait_closed();
      current_.reset();
      changed_.notify();
      auto info = s->closed_by();
      if (stopped_) {
        break;
      }
      if (info.remote && info.code == proto::goaway_code::replaced) {
        spdlog::error("session closed by the gateway: {}; not reconnecting", info.message);
        co_return link_result{link_end::replaced, info.message};
      }
      if (info.remote && info.code == proto::goaway_code::revoked) {
        spdlog::error("session closed by the gateway: {}; not reconnecting", info.message);
        co_return link_result{link_end::revoked, info.message};
      }
      if (std::exchange(migrating_, false)) {
        backoff = opts_.backoff_initial;
        continue;  // re-dial at once; auto mode tries QUIC first
      }
      why = info.message.empty() ? "closed" : info.message;
      // A session that lived a while earns a fast reconnect.
      if (clock::now() - started > std::chrono::seconds(10)) {
        backoff = opts_.backoff_initial;
      }
    }
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(backoff.count()) * jitter(rng)));
    spdlog::warn("session down: {}; retrying in {:.1f}s", why, static_cast<double>(delay.count()) / 1000.0);
    backoff_timer_.expires_after(delay);
    error_code ec;
    co_await backoff_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    backoff = std::min(backoff * 2, opts_.backoff_max);
  }
  co_return link_result{link_end::stopped, {}};
}

}  // namespace nl::transport
