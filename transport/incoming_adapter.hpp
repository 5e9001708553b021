// The incoming_stream that both session implementations (transport/mux, transport/quic)
// hand to the application: the peer's OPEN request and the stream's state, answered
// through the session's answer(state, code, message, envelope). accept() answers ok and
// returns a Stream over the same state; an OPEN left unanswered is rejected with
// errc::aborted. Session and State are the implementation's (State has an `id`).
// defer() hands out the stream before the answer (deferred_adapter), and opening_adapter is
// the opener's side of open_early(): both wrap the implementation's Stream and add the
// answer, which Session gives through answer() and wait_answer(state).
// Thread-safety: the session's executor.
#pragma once

#include <utility>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/session.hpp"

namespace nl::transport {

// Stream's behaviour (held by value: no second allocation), forwarded; the adapters below
// add the answer.
template <class Base, class Stream>
class stream_wrapper : public Base {
public:
  template <class Session, class State>
  stream_wrapper(std::shared_ptr<Session> s, std::shared_ptr<State> st) : s_(std::move(s), std::move(st)) {}
  std::uint32_t id() const noexcept override { return s_.id(); }
  awaitable<result<bytes>> read() override { return s_.read(); }
  awaitable<error_code> write(bytes data) override { return s_.write(std::move(data)); }
  awaitable<error_code> shutdown_send() override { return s_.shutdown_send(); }
  void reset(errc code, std::string_view message) override { s_.reset(code, message); }
  const std::string& error_message() const noexcept override { return s_.error_message(); }

private:
  Stream s_;
};

// A stream of a session that has ended: reset with errc::session_closed and the session's
// reason unless it was reset already, its unread data dropped, its waiters woken.
template <class State>
void fail_with_session(State& st, const std::string& why) {
  if (!st.reset) {
    st.reset = true;
    st.error = make_error_code(errc::session_closed);
    st.message = why;
    st.rx.clear();
  }
  st.ev.notify();
}

template <class Session, class State, class Stream>
class deferred_adapter final : public stream_wrapper<deferred_stream, Stream> {
public:
  deferred_adapter(std::shared_ptr<Session> s, std::shared_ptr<State> st)
      : stream_wrapper<deferred_stream, Stream>(s, st), sess_(std::move(s)), st_(std::move(st)) {}
  ~deferred_adapter() override {
    if (!answered_) {
      sess_->answer(st_, errc::aborted, "not accepted", {});
    }
  }
  void answer(errc code, std::string message, std::vector<std::byte> envelope) override {
    if (!answered_) {
      answered_ = true;
      sess_->answer(st_, code, message, std::move(envelope));
    }
  }

private:
  std::shared_ptr<Session> sess_;
  std::shared_ptr<State> st_;
  bool answered_ = false;
};

template <class Session, class State, class Stream>
class opening_adapter final : public stream_wrapper<opening_stream, Stream> {
public:
  opening_adapter(std::shared_ptr<Session> s, std::shared_ptr<State> st)
      : stream_wrapper<opening_stream, Stream>(s, st), sess_(std::move(s)), st_(std::move(st)) {}
  awaitable<open_answer> answer() override { return sess_->wait_answer(st_); }

private:
  std::shared_ptr<Session> sess_;
  std::shared_ptr<State> st_;
};

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
  std::unique_ptr<deferred_stream> defer() override {
    done_ = true;
    return std::make_unique<deferred_adapter<Session, State, Stream>>(s_, st_);
  }
  std::size_t early_bytes() const noexcept override { return st_->rx.byte_count(); }

private:
  std::shared_ptr<Session> s_;
  std::shared_ptr<State> st_;
  open_request req_;
  bool done_ = false;
};

}  // namespace nl::transport
