// The incoming_stream that both session implementations (transport/mux, transport/quic)
// hand to the application: the peer's OPEN request and the stream's state, answered
// through the session's answer(state, code, message, envelope). accept() answers ok and
// returns a Stream over the same state; an OPEN left unanswered is rejected with
// errc::aborted. Session and State are the implementation's (State has an `id`).
// Thread-safety: the session's executor.
#pragma once

#include <utility>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/session.hpp"

namespace nl::transport {

template <class Session, class State, class Stream>
class answerable_incoming final : public incoming_stream {
public:
  answerable_incoming(std::shared_ptr<Session> s, std::shared_ptr<State> st, open_request req)
      : s_(std::move(s)), st_(std::move(st)), req_(std::move(req)) {}
  ~answerable_incoming() override {
    if (!done_) {
      reject(errc::aborted, "not accepted");
    }
  }
  using incoming_stream::accept;
  using incoming_stream::reject;
  const open_request& request() const noexcept override { return req_; }
  std::uint32_t id() const noexcept override { return static_cast<std::uint32_t>(st_->id); }
  std::unique_ptr<stream> accept(std::vector<std::byte> envelope) override {
    done_ = true;
    s_->answer(st_, errc::ok, {}, std::move(envelope));
    return std::make_unique<Stream>(s_, st_);
  }
  void reject(errc code, std::string message, std::vector<std::byte> envelope) override {
    done_ = true;
    s_->answer(st_, code, message, std::move(envelope));
  }

private:
  std::shared_ptr<Session> s_;
  std::shared_ptr<State> st_;
  open_request req_;
  bool done_ = false;
};

}  // namespace nl::transport
