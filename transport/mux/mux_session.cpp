// The mux session: opening, accepting and answering streams, and the stream handles
// (transport/mux/mux_internal.hpp).
#include "transport/mux/mux_internal.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace nl::transport::mux_detail {

mux_session_impl::mux_session_impl(std::unique_ptr<message_channel> ch, mux_options o)
    : ch_(std::move(ch)),
      opts_(std::move(o)),
      ex_(ch_->executor()),
      accept_q_(ex_),
      next_id_(opts_.initiator ? 1 : 2),
      writer_ev_(ex_),
      closed_ev_(ex_),
      hello_ev_(ex_),
      control_sent_ev_(ex_),
      ka_timer_(ex_),
      last_rx_(clock::now()) {
  if (opts_.early_data) {
    opts_.window = std::max(opts_.window, proto::early_window);  // early data counts against it
  }
}

void mux_session_impl::start() {
  if (opts_.hello) {
    proto::append_hello(control_, *opts_.hello);
  }
  auto self = shared_from_this();
  auto on_exit = [self](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{}: session task failed: {}", self->opts_.log_name, ex.what());
      }
      self->close(goaway_code::protocol, "internal error");
    }
  };
  asio::co_spawn(ex_, reader(), on_exit);
  asio::co_spawn(ex_, writer(), on_exit);
  asio::co_spawn(ex_, keepalive(), on_exit);
}

awaitable<open_outcome> mux_session_impl::open(open_request req, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  errc code = errc::ok;
  std::string why;
  auto st = start_open(std::move(req), timeout, code, why);
  if (!st) {
    co_return open_outcome{nullptr, make_error_code(code), why};
  }
  while (st->awaiting_result && !st->reset) {
    co_await st->ev.wait();
  }
  co_return outcome_of(self, st);
}

awaitable<early_outcome> mux_session_impl::open_early(open_request req, std::chrono::milliseconds timeout) {
  co_return open_now(std::move(req), timeout);
}

early_outcome mux_session_impl::open_now(open_request req, std::chrono::milliseconds timeout) {
  early_outcome out;
  errc code = errc::ok;
  auto st = start_open(std::move(req), timeout, code, out.message);
  if (!st) {
    out.error = make_error_code(code);
    return out;
  }
  out.stream = std::make_unique<mux_opening>(shared_from_this(), st);
  return out;
}

awaitable<open_answer> mux_session_impl::wait_answer(state_ptr st) {
  auto self = shared_from_this();
  while (st->awaiting_result && !st->reset) {
    co_await st->ev.wait();
  }
  open_answer a;
  a.envelope = std::move(st->envelope);
  if (!st->accepted) {  // refused, or failed before any answer (timeout, session lost)
    a.error = st->error;
    a.message = st->message;
  }
  co_return a;
}

awaitable<result<std::unique_ptr<incoming_stream>>> mux_session_impl::accept() {
  auto self = shared_from_this();
  auto next = co_await accept_q_.next(closed_);
  if (!next) {
    co_return fail(errc::session_closed);
  }
  co_return std::make_unique<mux_incoming>(self, std::move(next->first), std::move(next->second));
}

void mux_session_impl::drain(goaway_code code, std::string message) {
  if (closed_ || local_goaway_) {
    return;
  }
  local_goaway_ = true;
  draining_ = true;
  proto::append_goaway(control_, {code, message});
  writer_ev_.notify();
  close_if_drained();
}

void mux_session_impl::close(goaway_code code, std::string message) {
  if (closed_) {
    return;
  }
  if (!local_goaway_) {
    local_goaway_ = true;
    proto::append_goaway(control_, {code, message});
  }
  finish(false, code, std::move(message));
  // The writer flushes the GOAWAY and then closes the channel; if it is stuck behind a
  // peer that does not read, give up after a short grace period.
  closing_ = true;
  writer_ev_.notify();
  auto self = shared_from_this();
  auto t = std::make_shared<asio::steady_timer>(ex_, std::chrono::seconds(2));
  t->async_wait([self, t](const error_code&) { self->ch_->close_now(); });
}

awaitable<void> mux_session_impl::wait_closed() {
  auto self = shared_from_this();
  while (!channel_done_) {
    co_await closed_ev_.wait();
  }
}

awaitable<result<proto::hello_body>> mux_session_impl::wait_hello(std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  watchdog wd(ex_, timeout, [self] {
    if (!self->hello_) {
      self->close(goaway_code::timeout, "no HELLO from gateway");
    }
  });
  while (!hello_ && !closed_) {
    co_await hello_ev_.wait();
  }
  if (!hello_) {
    co_return fail(errc::session_closed);
  }
  co_return *hello_;
}

open_outcome mux_session_impl::outcome_of(const std::shared_ptr<mux_session_impl>& self, const state_ptr& st) {
  open_outcome out;
  out.envelope = std::move(st->envelope);
  if (st->reset) {
    out.error = st->error;
    out.message = st->message;
  } else {
    out.stream = std::make_unique<mux_stream>(self, st);
  }
  return out;
}

state_ptr mux_session_impl::start_open(open_request req, std::chrono::milliseconds timeout, errc& code, std::string& why) {
  if (closed_ || draining_ || streams_.size() >= opts_.max_streams) {
    code = closed_ || draining_ ? errc::not_connected : errc::limit;
    why = closed_ ? "session closed" : draining_ ? "session draining" : "too many streams";
    return nullptr;
  }
  auto id = next_id_;
  next_id_ += 2;
  auto st = std::make_shared<stream_state>(id, ex_);
  st->awaiting_result = true;
  take_window(*st);
  st->rx_allowed = st->rx_window;
  if (opts_.early_data) {
    st->tx_credit = proto::early_window;
    st->peer_window = proto::early_window;
  }
  streams_.emplace(id, st);
  enqueue_open(id, st->rx_window, std::move(req));
  st->answer_wd = std::make_unique<watchdog>(
      ex_, timeout, [w = weak_from_this(), ws = std::weak_ptr<stream_state>(st), timeout] {
        auto self = w.lock();
        auto opened = ws.lock();
        if (self && opened && opened->awaiting_result && !opened->reset) {
          self->reset_stream(*opened, errc::timeout, "no answer within " + std::to_string(timeout.count()) + " ms", true);
        }
      });
  return st;
}

void mux_session_impl::enqueue_open(std::uint32_t id, std::uint32_t window, open_request req) {
  proto::open_body body;
  body.window = window;
  body.dest = std::move(req.dest);
  body.peer = std::move(req.peer);
  body.envelope = std::move(req.envelope);
  body.groups = std::move(req.groups);
  body.policy = std::move(req.policy);
  proto::append_open(control_, id, body);
  writer_ev_.notify();
}

awaitable<result<bytes>> mux_session_impl::stream_read(state_ptr st) {
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
  st->rx_consumed += static_cast<std::uint32_t>(b.size());
  if (!st->rx_fin && st->in_map && st->answered && st->rx_consumed >= st->rx_window / window_update_divisor) {
    auto grant = st->rx_consumed + grow_window(*st);
    proto::append_window(control_, st->id, grant);
    st->rx_allowed += grant;
    st->rx_consumed = 0;
    writer_ev_.notify();
  }
  release_window(*st);
  co_return b;
}

awaitable<error_code> mux_session_impl::stream_write(state_ptr st, bytes data) {
  auto self = shared_from_this();
  while (!data.empty()) {
    // Wait only for credit the receiver is sure to return: it grants in steps of
    // window / window_update_divisor, so more than that may never come.
    std::size_t need = std::min<std::size_t>(
        {data.size(), opts_.max_chunk, std::max<std::size_t>(1, st->peer_window / window_update_divisor)});
    while (!st->reset && !st->fin_sent && (!st->answered || st->tx_queued || st->tx_credit < need)) {
      co_await st->ev.wait();
    }
    if (st->reset) {
      co_return st->error;
    }
    if (st->fin_sent) {
      co_return make_error_code(errc::stream_closed);
    }
    std::size_t n = std::min<std::size_t>({data.size(), opts_.max_chunk, st->tx_credit});
    bytes piece;
    if (n == data.size()) {
      piece = std::move(data);
    } else {
      piece = bytes::copy_of(data.data(), n);
      data.consume(n);
    }
    st->tx_credit -= n;
    st->tx_queued = true;
    data_q_.push_back({st, std::move(piece), false});
    writer_ev_.notify();
  }
  co_return error_code{};
}

awaitable<void> mux_session_impl::stream_shutdown(state_ptr st) {
  auto self = shared_from_this();
  while (!st->reset && (!st->answered || (st->awaiting_result && !opts_.early_data))) {
    co_await st->ev.wait();
  }
  stream_fin(st);
}

void mux_session_impl::stream_fin(const state_ptr& st) {
  if (st->fin_sent || st->reset || closed_) {
    return;
  }
  st->fin_sent = true;
  st->ev.notify();
  if (st->tx_queued) {
    data_q_.push_back({st, bytes{}, true});  // after our last chunk, in order
  } else {
    proto::append_fin(control_, st->id);
  }
  writer_ev_.notify();
  remove_if_finished(*st);
}

void mux_session_impl::reset_stream(stream_state& st, errc code, std::string_view message, bool send) {
  if (st.reset) {
    return;
  }
  st.reset = true;
  st.answer_wd.reset();
  st.error = make_error_code(code);
  if (st.message.empty()) {
    st.message = std::string(message);
  }
  st.rx.clear();
  if (st.in_map) {
    if (send && !closed_) {
      proto::append_reset(control_, st.id, {code, std::string(message)});
      writer_ev_.notify();
    }
    erase(st);
  }
  st.ev.notify();
}

void mux_session_impl::stream_release(const state_ptr& st) {
  if (st->in_map && !st->reset) {
    reset_stream(*st, errc::aborted, "stream abandoned", true);
  }
  st->rx.clear();  // finished, but not all read: nobody will
  release_window(*st);
}

void mux_session_impl::take_window(stream_state& st) {
  std::uint64_t left = opts_.session_window > rx_committed_ ? opts_.session_window - rx_committed_ : 0;
  std::uint64_t least = std::min(min_stream_window, opts_.window);
  st.rx_window = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(left, least, opts_.window));
  rx_committed_ += st.rx_window;
}

std::uint32_t mux_session_impl::grow_window(stream_state& st) {
  if (st.rx_window == 0 || st.rx_window >= opts_.window || rx_committed_ >= opts_.session_window) {
    return 0;
  }
  auto more = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(opts_.window - st.rx_window, opts_.session_window - rx_committed_));
  st.rx_window += more;
  rx_committed_ += more;
  return more;
}

void mux_session_impl::release_window(stream_state& st) {
  if (st.rx_window != 0 && (!st.in_map || st.rx_fin) && st.rx.empty()) {
    rx_committed_ -= st.rx_window;
    st.rx_window = 0;
  }
}

void mux_session_impl::answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope) {
  st->answered = true;
  if (closed_) {
    return;
  }
  if (st->reset) {  // the opener gave up meanwhile
    return;
  }
  proto::open_result_body body;
  body.code = code;
  if (code == errc::ok) {
    take_window(*st);
  }
  body.window = st->rx_window;
  body.message = std::string(message);
  body.envelope = std::move(envelope);
  proto::append_open_result(control_, st->id, body);
  writer_ev_.notify();
  st->ev.notify();  // a deferred stream's writer may go on
  if (code == errc::ok) {
    // Early data already received was counted against proto::early_window.
    st->rx_allowed += st->rx_window - (opts_.early_data ? proto::early_window : 0);
  } else {
    st->reset = true;
    st->error = make_error_code(code);
    erase(*st);
  }
}

mux_stream::~mux_stream() { s_->stream_release(st_); }
awaitable<result<bytes>> mux_stream::read() { return s_->stream_read(st_); }
awaitable<error_code> mux_stream::write(bytes data) { return s_->stream_write(st_, std::move(data)); }
awaitable<error_code> mux_stream::shutdown_send() {
  co_await s_->stream_shutdown(st_);
  co_return error_code{};
}
void mux_stream::reset(errc code, std::string_view message) { s_->reset_stream(*st_, code, message, true); }

}  // namespace nl::transport::mux_detail

namespace nl::transport {

using mux_detail::mux_session_impl;

std::shared_ptr<session> make_mux_session(std::unique_ptr<message_channel> channel, mux_options opts) {
  auto s = std::make_shared<mux_session_impl>(std::move(channel), std::move(opts));
  s->start();
  return s;
}

awaitable<result<proto::hello_body>> wait_hello(session& s, std::chrono::milliseconds timeout) {
  auto* m = dynamic_cast<mux_session_impl*>(&s);
  if (!m) {
    co_return fail(errc::internal);
  }
  co_return co_await m->wait_hello(timeout);
}

}  // namespace nl::transport
