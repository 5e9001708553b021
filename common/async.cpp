#include "common/async.hpp"

namespace nl {

// `b` runs as a spawned coroutine and `a` right here, in this frame: a relay that sits idle
// for hours then holds one spawned frame instead of two, and no timer wait (the join's
// wait starts only once `a` is over).
awaitable<void> when_both(awaitable<void> a, awaitable<void> b) {
  auto ex = co_await asio::this_coro::executor;
  struct join {
    bool b_done = false;
    std::exception_ptr b_error;
    async_event done;
    explicit join(const asio::any_io_executor& e) : done(e) {}
  };
  auto j = std::make_shared<join>(ex);
  asio::co_spawn(ex, std::move(b), [j](std::exception_ptr e) {
    j->b_error = e;
    j->b_done = true;
    j->done.notify();
  });
  std::exception_ptr a_error;
  try {
    co_await std::move(a);
  } catch (...) {
    a_error = std::current_exception();
  }
  while (!j->b_done) {
    co_await j->done.wait();  // b may use what the caller keeps alive for both
  }
  if (a_error) {
    std::rethrow_exception(a_error);
  }
  if (j->b_error) {
    std::rethrow_exception(j->b_error);
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
