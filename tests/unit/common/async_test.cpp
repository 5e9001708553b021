// The coroutine helpers of common/async.hpp: async_event, when_both, sleep_for, watchdog.
// Every run of the io_context is bounded; time is only waited for where time is the subject.
#include "common/async.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

using namespace std::chrono_literals;
using nl::async_event;
using nl::awaitable;
using steady = std::chrono::steady_clock;
using nl::watchdog;
namespace asio = boost::asio;

namespace {

// Runs ready handlers until none is left (no waiting for timers).
void settle(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit) {
  io.restart();
  auto deadline = steady::now() + limit;
  while (!pred()) {
    if (steady::now() >= deadline) {
      return false;
    }
    if (io.run_one_until(deadline) == 0 && io.stopped()) {
      return pred();
    }
  }
  return true;
}

struct outcome {
  bool done = false;
  std::exception_ptr error;
};

std::shared_ptr<outcome> spawn(asio::io_context& io, awaitable<void> a) {
  auto o = std::make_shared<outcome>();
  asio::co_spawn(io, std::move(a), [o](std::exception_ptr e) {
    o->done = true;
    o->error = e;
  });
  return o;
}

awaitable<void> wait_for_flag(async_event& ev, const bool& flag, int& woken) {
  while (!flag) {
    co_await ev.wait();
  }
  ++woken;
}

awaitable<void> wait_once(async_event& ev, int& woken) {
  co_await ev.wait();
  ++woken;
}

awaitable<void> append_after(std::chrono::milliseconds d, std::vector<std::string>& log, std::string what) {
  co_await nl::sleep_for(d);
  log.push_back(std::move(what));
}

awaitable<void> throw_after(std::chrono::milliseconds d, std::vector<std::string>& log) {
  co_await nl::sleep_for(d);
  log.push_back("thrower");
  throw std::runtime_error("boom");
}

}  // namespace

TEST_CASE("async_event wakes every waiter present at notify()", "[async]") {
  asio::io_context io;
  async_event ev(io.get_executor());
  bool ready = false;
  int woken = 0;
  std::vector<std::shared_ptr<outcome>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(spawn(io, wait_for_flag(ev, ready, woken)));
  }
  settle(io);
  CHECK(woken == 0);

  // A spurious notify wakes them, they re-check the condition and wait again.
  ev.notify();
  settle(io);
  CHECK(woken == 0);

  ready = true;
  ev.notify();
  settle(io);
  CHECK(woken == 3);
  for (auto& w : waiters) {
    CHECK(w->done);
  }
}

TEST_CASE("async_event: a notify() with nobody waiting is not remembered", "[async]") {
  asio::io_context io;
  async_event ev(io.get_executor());
  ev.notify();  // nobody waits yet
  int woken = 0;
  auto w = spawn(io, wait_once(ev, woken));
  settle(io);
  CHECK(woken == 0);  // so waiters must check their condition first (documented)
  ev.notify();
  settle(io);
  CHECK(woken == 1);
  CHECK(w->done);
}

TEST_CASE("when_both runs both and returns when both finished", "[async]") {
  asio::io_context io;
  std::vector<std::string> log;
  auto both = [&]() -> awaitable<void> {
    co_await nl::when_both(append_after(60ms, log, "slow"), append_after(10ms, log, "fast"));
    log.push_back("joined");
  };
  auto o = spawn(io, both());
  auto t0 = steady::now();
  REQUIRE(run_until(io, [&] { return o->done; }, 1000ms));
  CHECK(steady::now() - t0 >= 60ms);  // waited for the slower one
  CHECK(log == std::vector<std::string>{"fast", "slow", "joined"});
  CHECK(o->error == nullptr);
}

TEST_CASE("when_both rethrows an exception after the other one finished", "[async]") {
  asio::io_context io;
  std::vector<std::string> log;
  std::string caught;
  auto both = [&]() -> awaitable<void> {
    try {
      co_await nl::when_both(throw_after(5ms, log), append_after(50ms, log, "survivor"));
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    log.push_back("after");
  };
  auto o = spawn(io, both());
  REQUIRE(run_until(io, [&] { return o->done; }, 1000ms));
  CHECK(caught == "boom");
  CHECK(log == std::vector<std::string>{"thrower", "survivor", "after"});

  SECTION("an exception from either side propagates to the caller's completion") {
    auto bare = [&]() -> awaitable<void> {
      co_await nl::when_both(append_after(1ms, log, "x"), throw_after(1ms, log));
    };
    auto o2 = spawn(io, bare());
    REQUIRE(run_until(io, [&] { return o2->done; }, 1000ms));
    REQUIRE(o2->error);
    CHECK_THROWS_AS(std::rethrow_exception(o2->error), std::runtime_error);
  }
}

TEST_CASE("sleep_for waits at least the duration", "[async]") {
  asio::io_context io;
  auto t0 = steady::now();
  auto o = spawn(io, nl::sleep_for(30ms));
  REQUIRE(run_until(io, [&] { return o->done; }, 1000ms));
  CHECK(steady::now() - t0 >= 30ms);
}

TEST_CASE("watchdog fires once after its duration", "[async]") {
  asio::io_context io;
  int fired = 0;
  auto t0 = steady::now();  // before the watchdog starts its timer, not after
  watchdog wd(io.get_executor(), 30ms, [&] { ++fired; });
  CHECK_FALSE(wd.fired());
  REQUIRE(run_until(io, [&] { return fired > 0; }, 1000ms));
  CHECK(steady::now() - t0 >= 30ms);
  CHECK(wd.fired());
  settle(io);
  CHECK(fired == 1);
  wd.cancel();  // after firing: harmless
  CHECK(fired == 1);
}

TEST_CASE("a cancelled or destroyed watchdog never fires", "[async]") {
  asio::io_context io;
  int fired = 0;
  SECTION("cancel()") {
    watchdog wd(io.get_executor(), 20ms, [&] { ++fired; });
    wd.cancel();
    wd.cancel();  // idempotent
    CHECK_FALSE(run_until(io, [&] { return fired > 0; }, 100ms));
    CHECK_FALSE(wd.fired());
  }
  SECTION("destruction") {
    {
      watchdog wd(io.get_executor(), 20ms, [&] { ++fired; });
    }
    CHECK_FALSE(run_until(io, [&] { return fired > 0; }, 100ms));
  }
  SECTION("destruction inside the coroutine that it guards (the open() pattern)") {
    bool finished = false;
    auto guarded = [&]() -> awaitable<void> {
      watchdog wd(co_await asio::this_coro::executor, 50ms, [&] { ++fired; });
      co_await nl::sleep_for(5ms);
      finished = true;
    };
    auto o = spawn(io, guarded());
    REQUIRE(run_until(io, [&] { return o->done; }, 1000ms));
    CHECK(finished);
    CHECK_FALSE(run_until(io, [&] { return fired > 0; }, 100ms));
  }
  CHECK(fired == 0);
}

TEST_CASE("a watchdog wakes a waiter by acting on what it waits for", "[async]") {
  // The timeout idiom of nl: the watchdog's action changes the condition and notifies.
  asio::io_context io;
  async_event ev(io.get_executor());
  bool timed_out = false;
  int woken = 0;
  auto waiter = [&]() -> awaitable<void> {
    watchdog wd(co_await asio::this_coro::executor, 20ms, [&] {
      timed_out = true;
      ev.notify();
    });
    while (!timed_out) {
      co_await ev.wait();
    }
    ++woken;
  };
  auto o = spawn(io, waiter());
  REQUIRE(run_until(io, [&] { return o->done; }, 1000ms));
  CHECK(timed_out);
  CHECK(woken == 1);
}
