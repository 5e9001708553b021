// Incoming streams a session has received (an OPEN from the peer) and the application has
// not accepted yet, shared by both session implementations (transport/mux, transport/quic).
// State is the implementation's stream state. The queue is bounded by the session (it
// refuses OPENs beyond its backlog); a stream reset by the peer before it was accepted is
// removed with drop().
// Thread-safety: the session's executor.
#pragma once

#include <utility>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>

#include "common/async.hpp"
#include "proto/frame.hpp"
#include "transport/session.hpp"

namespace nl::transport {

template <class State>
class accept_queue {
public:
  using entry = std::pair<std::shared_ptr<State>, open_request>;

  explicit accept_queue(const boost::asio::any_io_executor& ex) : ev_(ex) {}

  bool empty() const noexcept { return q_.empty(); }
  std::size_t size() const noexcept { return q_.size(); }

  // Queues the stream with the request decoded from its OPEN, and wakes next().
  void push(std::shared_ptr<State> st, proto::open_body&& body) {
    auto req = make_open_request(std::move(body.dest), std::move(body.peer), std::move(body.envelope));
    req.groups = std::move(body.groups);
    req.policy = std::move(body.policy);
    q_.emplace_back(std::move(st), std::move(req));
    ev_.notify();
  }

  // Removes a stream that ended before the application saw it.
  void drop(const std::shared_ptr<State>& st) {
    std::erase_if(q_, [&](const entry& e) { return e.first == st; });
  }

  // The session closed: what waits is dropped and next() returns.
  void close() {
    q_.clear();
    ev_.notify();
  }

  // The oldest waiting stream; nullopt once `closed` (the session's flag, read after every
  // wake-up) is set and nothing waits. The caller keeps the session, hence `closed`, alive.
  awaitable<std::optional<entry>> next(const bool& closed) {
    while (q_.empty() && !closed) {
      co_await ev_.wait();
    }
    if (q_.empty()) {
      co_return std::nullopt;
    }
    std::optional<entry> e(std::move(q_.front()));
    q_.pop_front();
    co_return e;
  }

private:
  std::deque<entry> q_;
  async_event ev_;
};

}  // namespace nl::transport
