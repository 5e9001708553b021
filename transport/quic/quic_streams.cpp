#include "transport/quic/quic_connection.hpp"

#include "transport/incoming_adapter.hpp"
#include "transport/quic/quic_internal.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

// The session interface (open, accept, drain, close) and the per-stream reads, writes,
// resets and answers of a QUIC connection. Packets, timers and set-up: quic_connection.cpp.

namespace nl::transport::quic::detail {

using proto::goaway_code;

namespace {

constexpr std::size_t rx_chunk = 64 * 1024;  // received bytes are gathered in chunks this big

class quic_stream final : public stream {
public:
  quic_stream(std::shared_ptr<connection> c, state_ptr st) : c_(std::move(c)), st_(std::move(st)) {}
  ~quic_stream() override { c_->stream_release(st_); }
  std::uint32_t id() const noexcept override { return static_cast<std::uint32_t>(st_->id); }
  awaitable<result<bytes>> read() override { return c_->stream_read(st_); }
  awaitable<error_code> write(bytes data) override { return c_->stream_write(st_, std::move(data)); }
  awaitable<error_code> shutdown_send() override {
    co_await c_->stream_shutdown(st_);
    co_return st_->reset ? st_->error : error_code{};
  }
  void reset(errc code, std::string_view message) override { c_->reset_stream(st_, code, message, true); }
  const std::string& error_message() const noexcept override { return st_->message; }

private:
  std::shared_ptr<connection> c_;
  state_ptr st_;
};

using quic_incoming = answerable_incoming<connection, stream_state, quic_stream>;
using quic_opening = opening_adapter<connection, stream_state, quic_stream>;

}  // namespace

// ---------------------------------------------------------------------------------------
// Session interface
// ---------------------------------------------------------------------------------------

std::size_t connection::stream_count() const noexcept { return streams_.size() - (ctl_ && !ctl_->closed ? 1 : 0); }

open_outcome connection::outcome_of(const state_ptr& st) {
  open_outcome out;
  out.envelope = std::move(st->envelope);
  if (st->reset) {
    out.error = st->error;
    out.message = st->message;
  } else {
    out.stream = std::make_unique<quic_stream>(shared_from_this(), st);
  }
  return out;
}

// Not a coroutine: see the note on g++ 12 and aggregates in transport/mux/mux_internal.hpp.
void connection::queue_open(const state_ptr& st, open_request req) {
  proto::open_body body;
  body.window = static_cast<std::uint32_t>(std::min<std::uint64_t>(opts_.stream_window, UINT32_MAX));
  body.dest = std::move(req.dest);
  body.peer = std::move(req.peer);
  body.envelope = std::move(req.envelope);
  body.groups = std::move(req.groups);
  body.policy = std::move(req.policy);
  std::vector<std::byte> frame;
  proto::append_open(frame, static_cast<std::uint32_t>(st->id), body);
  write_stream(st, bytes::copy_of(frame));
}

// The id of a new stream of ours, once the peer allows one more; -1 and `failure` when the
// session ends or `timeout` passes first.
awaitable<std::int64_t> connection::reserve_stream(std::chrono::milliseconds timeout, open_outcome& failure) {
  auto self = shared_from_this();
  auto given_up = std::make_shared<bool>(false);
  watchdog wd(ex_, timeout, [self, given_up] {
    *given_up = true;
    self->streams_ev_.notify();
  });
  std::int64_t id = -1;
  for (;;) {
    if (closed_ || draining_ || !established_) {
      failure = open_outcome::failed(errc::not_connected, closed_ ? "session closed" : "session draining");
      co_return -1;
    }
    int rv = ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr);
    if (rv == 0) {
      co_return id;
    }
    if (rv != NGTCP2_ERR_STREAM_ID_BLOCKED) {
      failure = open_outcome::failed(errc::internal, ngtcp2_strerror(rv));
      co_return -1;
    }
    if (*given_up) {
      failure = open_outcome::failed(errc::limit, "the peer allows no more streams");
      co_return -1;
    }
    co_await streams_ev_.wait();
  }
}

// A new stream with its OPEN queued; reset with errc::timeout unless answered within `left`
// (the message names the caller's whole `timeout`).
state_ptr connection::start_open(std::int64_t id, open_request req, clock::duration left,
                                 std::chrono::milliseconds timeout) {
  auto st = std::make_shared<stream_state>(id, ex_);
  st->ph = stream_state::phase::want_result;
  streams_.emplace(id, st);
  queue_open(st, std::move(req));
  st->answer_wd = std::make_unique<watchdog>(
      ex_, left, [w = weak_from_this(), ws = std::weak_ptr<stream_state>(st), timeout] {
        auto c = w.lock();
        auto opened = ws.lock();
        if (c && opened && opened->ph == stream_state::phase::want_result && !opened->reset) {
          c->reset_stream(opened, errc::timeout, "no answer within " + std::to_string(timeout.count()) + " ms", true);
        }
      });
  return st;
}

awaitable<open_outcome> connection::open(open_request req, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto deadline = clock::now() + timeout;  // one timeout for the stream id and the answer
  open_outcome failure;
  auto id = co_await reserve_stream(timeout, failure);
  if (id < 0) {
    co_return failure;
  }
  auto st = start_open(id, std::move(req), std::max<clock::duration>(deadline - clock::now(), {}), timeout);
  while (st->ph == stream_state::phase::want_result && !st->reset) {
    co_await st->ev.wait();
  }
  co_return outcome_of(st);
}

// QUIC streams take early data natively: the acceptor keeps what follows the OPEN frame
// (within the stream's flow-control window) until it answers.
awaitable<early_outcome> connection::open_early(open_request req, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  early_outcome out;
  open_outcome failure;
  auto id = co_await reserve_stream(timeout, failure);
  if (id < 0) {
    out.error = failure.error;
    out.message = std::move(failure.message);
    co_return out;
  }
  auto st = start_open(id, std::move(req), timeout, timeout);
  out.stream = std::make_unique<quic_opening>(self, st);
  co_return out;
}

awaitable<open_answer> connection::wait_answer(state_ptr st) {
  auto self = shared_from_this();
  while (st->ph == stream_state::phase::want_result && !st->reset) {
    co_await st->ev.wait();
  }
  open_answer a;
  a.envelope = std::move(st->envelope);
  if (st->ph == stream_state::phase::want_result) {  // refused, or failed before any answer
    a.error = st->error;
    a.message = st->message;
  }
  co_return a;
}

awaitable<result<std::unique_ptr<incoming_stream>>> connection::accept() {
  auto self = shared_from_this();
  auto next = co_await accept_q_.next(closed_);
  if (!next) {
    co_return fail(errc::session_closed);
  }
  co_return std::make_unique<quic_incoming>(self, std::move(next->first), std::move(next->second));
}

void connection::drain(goaway_code code, std::string message) {
  if (closed_ || local_goaway_) {
    return;
  }
  local_goaway_ = true;
  draining_ = true;
  drain_code_ = code;
  drain_message_ = message;
  std::vector<std::byte> frame;
  proto::append_goaway(frame, {code, std::move(message)});
  write_control(frame);
  close_if_drained();
}

void connection::close(goaway_code code, std::string message) {
  if (done_) {
    return;
  }
  if (!closing_ && !closed_ && tx_pending()) {
    closing_ = true;
    closing_code_ = code;
    closing_message_ = std::move(message);
    std::weak_ptr<connection> w = shared_from_this();
    close_grace_.emplace(ex_, std::chrono::seconds(2), [w] {
      if (auto c = w.lock()) c->close_now(c->closing_code_, c->closing_message_);
    });
    return;
  }
  close_now(code, std::move(message));
}

void connection::close_now(goaway_code code, std::string message) {
  if (done_) {
    return;
  }
  auto self = shared_from_this();
  if (close_grace_) close_grace_->cancel();
  finish(false, code, message);
  send_close(goaway_code_base + static_cast<std::uint64_t>(code), message);
  terminate();
}

bool connection::tx_pending() const {
  for (auto& [id, st] : streams_) {
    if (st->control || st->reset) continue;
    if (!st->tx.empty() || st->has_output() || (st->fin_sent && st->rx_fin)) return true;
  }
  return false;
}

void connection::check_closing() {
  if (closing_ && !done_ && !tx_pending()) {
    auto self = shared_from_this();
    asio::post(ex_, [self] { self->close_now(self->closing_code_, self->closing_message_); });
    closing_ = false;
  }
}

void connection::close_if_drained() {
  if (!draining_ || closed_ || stream_count() != 0 || !accept_q_.empty()) {
    return;
  }
  auto self = shared_from_this();
  auto code = close_info_.remote ? close_info_.code : drain_code_;
  auto msg = close_info_.remote ? close_info_.message : drain_message_.empty() ? "drained" : drain_message_;
  asio::post(ex_, [self, code, msg] { self->close(code, msg); });
}

awaitable<void> connection::wait_closed() {
  auto self = shared_from_this();
  while (!done_) {
    co_await closed_ev_.wait();
  }
}

void connection::server_accept(const proto::hello_body& hello) {
  if (closed_ || established_) {
    return;
  }
  established_ = true;
  hello_deadline_.reset();
  std::vector<std::byte> frame;
  proto::append_hello(frame, hello);
  write_control(frame);
  state_ev_.notify();
}

void connection::refuse(errc code, std::string message) {
  if (done_) {
    return;
  }
  auto self = shared_from_this();
  finish(false, goaway_code::normal, message);
  send_close(refusal_code_base + static_cast<std::uint64_t>(code), message);
  terminate();
}

// ---------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------

state_ptr connection::find(std::int64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void connection::consume(std::int64_t id, std::size_t n) {
  if (n == 0 || !conn_ || done_) {
    return;
  }
  ngtcp2_conn_extend_max_stream_offset(conn_, id, n);
  ngtcp2_conn_extend_max_offset(conn_, n);
}

void connection::push_rx(stream_state& st, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    if (st.rx.empty() || st.rx.back().tailroom() == 0) {
      st.rx.emplace_back(std::max(rx_chunk, std::min<std::size_t>(n, 1024 * 1024)));
    }
    auto& back = st.rx.back();
    auto take = std::min(n, back.tailroom());
    std::memcpy(back.data() + back.size(), p, take);
    back.commit(take);
    p += take;
    n -= take;
  }
}

void connection::write_stream(const state_ptr& st, bytes data) {
  if (data.empty()) {
    return;
  }
  st->tx_end += data.size();
  st->tx.push_back(std::move(data));
  enqueue_send(st);
}

void connection::write_control(const std::vector<std::byte>& frame) {
  if (ctl_ && !ctl_->reset) {
    write_stream(ctl_, bytes::copy_of(frame));
  }
}

void connection::enqueue_send(const state_ptr& st) {
  if (!st->queued && !st->reset && !st->closed && !st->fc_blocked && st->has_output()) {
    st->queued = true;
    send_q_.push_back(st);
  }
  schedule_flush();
}

state_ptr connection::pick() {
  // Control frames (HELLO, GOAWAY, RESET messages) go before stream data.
  if (ctl_ && ctl_->queued && !ctl_->reset && !ctl_->closed && !ctl_->fc_blocked && ctl_->has_output()) {
    if (auto it = std::find(send_q_.begin(), send_q_.end(), ctl_); it != send_q_.begin() && it != send_q_.end()) {
      send_q_.erase(it);
      send_q_.push_front(ctl_);
    }
  }
  while (!send_q_.empty()) {
    auto st = send_q_.front();
    if (st->reset || st->closed || st->fc_blocked || !st->has_output()) {
      st->queued = false;
      send_q_.pop_front();
      continue;
    }
    return st;
  }
  return nullptr;
}

awaitable<result<bytes>> connection::stream_read(state_ptr st) {
  auto self = shared_from_this();
  while (st->rx.empty() && !st->rx_fin && !st->reset) {
    co_await st->ev.wait();
  }
  if (st->reset) {
    co_return fail(st->error);
  }
  if (st->rx.empty()) {
    co_return bytes{};  // EOF
  }
  bytes b = st->rx.pop_front();
  // Credit goes back only now that the application has the bytes: end-to-end backpressure.
  consume(st->id, b.size());
  schedule_flush();
  co_return b;
}

awaitable<error_code> connection::stream_write(state_ptr st, bytes data) {
  auto self = shared_from_this();
  // An incoming stream taken before its answer (defer()) writes only after the OPEN_RESULT.
  while (!st->reset && !st->fin_wanted &&
         (st->ph == stream_state::phase::pending || st->tx_end - st->tx_base >= opts_.send_buffer)) {
    co_await st->ev.wait();
  }
  if (st->reset) {
    co_return st->error;
  }
  if (st->fin_wanted) {
    co_return make_error_code(errc::stream_closed);
  }
  write_stream(st, std::move(data));
  co_return error_code{};
}

awaitable<void> connection::stream_shutdown(state_ptr st) {
  auto self = shared_from_this();
  while (st->ph == stream_state::phase::pending && !st->reset) {
    co_await st->ev.wait();  // our FIN goes after our answer
  }
  stream_fin(st);
}

void connection::stream_fin(const state_ptr& st) {
  if (st->fin_wanted || st->reset || closed_) {
    return;
  }
  st->fin_wanted = true;
  st->ev.notify();
  enqueue_send(st);
}

void connection::reset_stream(const state_ptr& st, errc code, std::string_view message, bool send) {
  if (st->reset) {
    if (st->message.empty()) {
      st->message = std::string(message);
    }
    return;
  }
  st->reset = true;
  st->answer_wd.reset();
  st->error = make_error_code(code);
  if (st->message.empty()) {
    st->message = std::string(message);
  }
  // Bytes received but never read still hold connection credit: give it back.
  std::size_t unread = 0;
  for (auto& b : st->rx) {
    unread += b.size();
  }
  st->rx.clear();
  if (unread && conn_ && !done_) {
    ngtcp2_conn_extend_max_offset(conn_, unread);
  }
  if (!st->closed && !closed_) {
    if (send && !message.empty() && ctl_ && ctl_->tx_end - ctl_->tx_base <= max_control_backlog) {
      std::vector<std::byte> frame;
      proto::append_reset(frame, static_cast<std::uint32_t>(st->id), {code, std::string(message)});
      write_control(frame);
    }
    shutdowns_.push_back({st->id, static_cast<std::uint64_t>(code), false});
    schedule_flush();
  }
  st->ev.notify();
}

void connection::stream_release(const state_ptr& st) {
  if (!st->reset && !st->closed && !(st->fin_wanted && st->rx_fin)) {
    reset_stream(st, errc::aborted, "stream abandoned", true);
  }
}

void connection::answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope) {
  if (closed_ || st->reset || st->closed) {
    return;
  }
  proto::open_result_body body;
  body.code = code;
  body.window = code == errc::ok ? static_cast<std::uint32_t>(std::min<std::uint64_t>(opts_.stream_window, UINT32_MAX))
                                 : 0;
  body.message = std::string(message);
  body.envelope = std::move(envelope);
  std::vector<std::byte> frame;
  proto::append_open_result(frame, static_cast<std::uint32_t>(st->id), body);
  st->ph = stream_state::phase::open;
  write_stream(st, bytes::copy_of(frame));
  st->ev.notify();  // a deferred stream's writer may go on
  if (code != errc::ok) {
    // OPEN_RESULT, FIN, and STOP_SENDING: the stream ends once the opener has read it.
    st->fin_wanted = true;
    st->error = make_error_code(code);
    shutdowns_.push_back({st->id, static_cast<std::uint64_t>(code), true});
    enqueue_send(st);
  }
}

}  // namespace nl::transport::quic::detail
