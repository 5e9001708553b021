#include "common/async.hpp"

namespace nl {

awaitable<void> when_both(awaitable<void> a, awaitable<void> b) {
  auto ex = co_await asio::this_coro::executor;
  struct join {
    int pending = 2;
    std::exception_ptr error;
    async_event done;
    explicit join(const asio::any_io_executor& e) : done(e) {}
  };
  auto j = std::make_shared<join>(ex);
  auto on_done = [j](std::exception_ptr e) {
    if (e && !j->error) {
      j->error = e;
    }
    if (--j->pending == 0) {
      j->done.notify();
    }
  };
  asio::co_spawn(ex, std::move(a), on_done);
  asio::co_spawn(ex, std::move(b), on_done);
  while (j->pending > 0) {
    co_await j->done.wait();
  }
  if (j->error) {
    std::rethrow_exception(j->error);
  }
}

awaitable<void> sleep_for(clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
}

watchdog::watchdog(const asio::any_io_executor& ex, clock::duration d,
                   std::function<void()> on_expiry)
    : state_(std::make_shared<state>(ex)) {
  state_->action = std::move(on_expiry);
  state_->timer.expires_after(d);
  state_->timer.async_wait([s = state_](const boost::system::error_code& ec) {
    if (!ec && !s->cancelled) {
      s->fired = true;
      auto act = std::move(s->action);
      act();
    }
  });
}

watchdog::~watchdog() { cancel(); }

void watchdog::cancel() {
  if (state_ && !state_->cancelled) {
    state_->cancelled = true;
    state_->timer.cancel();
  }
}

awaitable<void> expire_when_idle(asio::steady_timer& timer, const clock::time_point& last, clock::duration limit,
                                 const bool& done, std::function<void()> on_idle) {
  while (!done) {
    timer.expires_at(last + limit);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!done && clock::now() >= last + limit) {
      on_idle();
      co_return;
    }
  }
}

}  // namespace nl
