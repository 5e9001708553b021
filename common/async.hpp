// Small coroutine helpers that Asio 1.18 (Boost 1.74) lacks: an event to wake waiting
// coroutines (no channels yet), "run both and wait for both" (no awaitable operators),
// sleeping, and a watchdog timer that runs an action on expiry (no cancellation slots, so
// a timeout is enforced by closing the thing being waited on).
// Thread-safety: none; every object belongs to one executor (nl runs one thread per process).
#pragma once

#include <utility>  // before Asio's awaitable header: g++ 12 needs it

#include <chrono>
#include <exception>
#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nl {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using clock = std::chrono::steady_clock;

// Wakes every coroutine waiting at the moment notify() is called. Waiters re-check their
// condition in a loop (`while (!ready) co_await ev.wait();`): with one thread there is no
// window between the check and the suspension, so no wake-up is lost.
class async_event {
public:
  explicit async_event(const asio::any_io_executor& ex) : timer_(ex, clock::time_point::max()) {}
  awaitable<void> wait() {
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  void notify() { timer_.cancel(); }

private:
  asio::steady_timer timer_;
};

// Runs `a` and `b` concurrently on the current executor and returns when both finished.
// An exception from either is rethrown after both have finished.
awaitable<void> when_both(awaitable<void> a, awaitable<void> b);

awaitable<void> sleep_for(clock::duration d);

// Idle expiry (UDP flows): returns once `last` (the caller's time of last activity) is
// older than `limit`, after calling on_idle(); or as soon as `done` is true when the
// caller cancels `timer` to wake it.
awaitable<void> expire_when_idle(asio::steady_timer& timer, const clock::time_point& last, clock::duration limit,
                                 const bool& done, std::function<void()> on_idle);

// Calls `on_expiry` once if not cancelled (or destroyed) within `d`.
class watchdog {
public:
  watchdog(const asio::any_io_executor& ex, clock::duration d, std::function<void()> on_expiry);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  void cancel();
  bool fired() const { return state_->fired; }

private:
  struct state {
    asio::steady_timer timer;
    std::function<void()> action;
    bool fired = false;
    bool cancelled = false;
    explicit state(const asio::any_io_executor& ex) : timer(ex) {}
  };
  std::shared_ptr<state> state_;
};

}  // namespace nl
