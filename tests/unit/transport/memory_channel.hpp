// An in-memory message_channel pair for unit tests of the mux (and anything built on a
// session): two ends on one io_context, each write_message() delivered whole to the other
// end's queue. Tests reach the shared memory_link to misbehave on purpose: drop, duplicate
// or hold messages, tap every byte, delay writes, stall writes (a peer that stopped reading)
// or inject raw messages (a hostile or buggy peer).
// Thread-safety: none; everything lives on the one io_context thread.
#pragma once

#include <utility>  // before Asio's awaitable header: g++ 12 needs it

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/async.hpp"
#include "transport/mux/channel.hpp"

namespace nl::test {

namespace asio = boost::asio;

// What the filter hook decides for one message.
enum class verdict {
  deliver,    // as a real link would
  drop,       // lost (a broken middlebox; the mux assumes a reliable channel)
  duplicate,  // delivered twice
  hold,       // kept back until release_held()
};

// One direction of the link: what end `from` wrote, waiting for end `to` to read it.
struct direction {
  explicit direction(const asio::any_io_executor& ex) : arrived(ex), unstalled(ex) {}

  std::deque<std::vector<std::byte>> queue;  // delivered, not yet read
  std::vector<std::vector<std::byte>> held;  // kept back by the filter
  async_event arrived;                       // wakes the reader of this direction
  async_event unstalled;                     // wakes a writer stuck in stalled mode

  // ---- hooks, set by tests ----
  std::function<verdict(std::span<const std::byte>)> filter;  // per message; default deliver
  std::function<void(std::span<const std::byte>)> tap;        // sees every written message
  std::chrono::milliseconds delay{0};  // each write completes (and delivers) after this long
  bool stalled = false;                // writes never complete: the reader stopped reading

  // ---- counters ----
  std::size_t messages = 0;  // written (before the filter)
  std::size_t bytes = 0;
};

// The shared state of a pair. End 0 writes into dirs[0] and reads dirs[1]; end 1 the reverse.
class memory_link {
public:
  explicit memory_link(const asio::any_io_executor& ex) : ex_(ex), dirs_{direction(ex), direction(ex)} {}

  direction& from(int end) { return dirs_[end]; }  // what `end` writes
  direction& to(int end) { return dirs_[1 - end]; }  // what `end` reads

  // Delivers a raw message to `end`'s reader, as if the other end had written it.
  void inject(int end, std::vector<std::byte> msg) {
    auto& d = to(end);
    d.queue.push_back(std::move(msg));
    d.arrived.notify();
  }

  // Delivers every message the filter held back in the direction written by `from_end`.
  void release_held(int from_end) {
    auto& d = from(from_end);
    for (auto& m : d.held) {
      d.queue.push_back(std::move(m));
    }
    d.held.clear();
    d.arrived.notify();
  }

  void set_stalled(int from_end, bool on) {
    auto& d = from(from_end);
    d.stalled = on;
    if (!on) {
      d.unstalled.notify();
    }
  }

  bool closed(int end) const { return closed_[end]; }
  // `end` sent its close frame (WebSocket close handshake started) or is gone.
  bool close_sent(int end) const { return close_sent_[end] || closed_[end]; }

  // ---- used by the channel ends ----
  // Like a WebSocket close frame: the peer reads what was sent before it, then EOF; what the
  // peer writes meanwhile is read and discarded by this end (as Beast's async_close does).
  void send_close(int end) {
    if (close_sent_[end] || closed_[end]) {
      return;
    }
    close_sent_[end] = true;
    graceful_[end] = true;
    notify_all();
  }
  // Like closing the socket: pending operations of this end fail, the peer's reads fail
  // (after what had already arrived) and the peer's writes fail.
  void close_end(int end) {
    if (closed_[end]) {
      return;
    }
    closed_[end] = true;
    notify_all();
  }
  bool graceful(int end) const { return graceful_[end]; }
  const asio::any_io_executor& executor() const { return ex_; }

private:
  asio::any_io_executor ex_;
  direction dirs_[2];
  bool closed_[2] = {false, false};
  bool close_sent_[2] = {false, false};
  bool graceful_[2] = {false, false};

  void notify_all() {
    for (auto& d : dirs_) {
      d.arrived.notify();
      d.unstalled.notify();
    }
  }
};

class memory_channel final : public transport::message_channel {
public:
  memory_channel(std::shared_ptr<memory_link> link, int end) : link_(std::move(link)), end_(end) {
    address_ = end_ == 0 ? "mem:b" : "mem:a";
  }
  ~memory_channel() override { link_->close_end(end_); }

  asio::any_io_executor executor() override { return link_->executor(); }

  asio::awaitable<result<std::span<const std::byte>>> read_message() override {
    auto link = link_;  // the link outlives a channel destroyed while we wait
    auto& in = link->to(end_);
    for (;;) {
      if (link->closed(end_)) {
        co_return std::unexpected(error_code(asio::error::operation_aborted));
      }
      if (!in.queue.empty()) {
        current_ = std::move(in.queue.front());
        in.queue.pop_front();
        co_return std::span<const std::byte>(current_);
      }
      // Like a socket: what arrived before the peer closed is still read, then the error.
      if (link->close_sent(1 - end_)) {
        co_return std::unexpected(link->graceful(1 - end_) ? error_code(asio::error::eof)
                                                           : error_code(asio::error::connection_reset));
      }
      co_await in.arrived.wait();
    }
  }

  asio::awaitable<error_code> write_message(std::span<const asio::const_buffer> buffers) override {
    auto link = link_;
    auto& out = link->from(end_);
    auto broken = [&] { return link->closed(end_) || link->closed(1 - end_); };
    // The peer started the close handshake: it reads and discards what we still send.
    auto discarded = [&] { return link->close_sent(1 - end_) && !link->closed(1 - end_); };
    if (broken()) {
      co_return error_code(asio::error::broken_pipe);
    }
    std::vector<std::byte> msg;
    for (const auto& b : buffers) {
      auto p = static_cast<const std::byte*>(b.data());
      msg.insert(msg.end(), p, p + b.size());
    }
    ++out.messages;
    out.bytes += msg.size();
    if (out.tap) {
      out.tap(msg);
    }
    if (out.delay.count() > 0) {
      asio::steady_timer t(link->executor(), out.delay);
      error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    while (out.stalled && !broken()) {
      co_await out.unstalled.wait();
    }
    if (broken()) {
      co_return error_code(asio::error::broken_pipe);
    }
    if (discarded()) {
      co_return error_code{};
    }
    auto v = out.filter ? out.filter(msg) : verdict::deliver;
    switch (v) {
      case verdict::deliver:
        out.queue.push_back(std::move(msg));
        break;
      case verdict::drop:
        break;
      case verdict::duplicate:
        out.queue.push_back(msg);
        out.queue.push_back(std::move(msg));
        break;
      case verdict::hold:
        out.held.push_back(std::move(msg));
        break;
    }
    out.arrived.notify();
    co_return error_code{};
  }

  // Sends the close "frame" and waits for the peer's (its own close, or its socket going
  // away); the caller bounds the wait, as with Beast.
  asio::awaitable<void> close_gracefully() override {
    auto link = link_;
    link->send_close(end_);
    while (!link->closed(end_) && !link->close_sent(1 - end_)) {
      co_await link->to(end_).arrived.wait();
    }
    link->close_end(end_);
  }

  void close_now() override { link_->close_end(end_); }

  std::string_view name() const noexcept override { return "mem"; }
  std::string_view remote_address() const noexcept override { return address_; }

private:
  std::shared_ptr<memory_link> link_;
  int end_;
  std::string address_;
  std::vector<std::byte> current_;  // the message last returned by read_message()
};

struct channel_pair {
  std::shared_ptr<memory_link> link;
  std::unique_ptr<memory_channel> a;  // end 0
  std::unique_ptr<memory_channel> b;  // end 1
};

inline channel_pair make_channel_pair(asio::io_context& io) {
  auto link = std::make_shared<memory_link>(io.get_executor());
  auto a = std::make_unique<memory_channel>(link, 0);
  auto b = std::make_unique<memory_channel>(link, 1);
  return {link, std::move(a), std::move(b)};
}

}  // namespace nl::test
