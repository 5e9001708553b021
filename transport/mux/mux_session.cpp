#include "transport/mux/mux_session.hpp"

#include "transport/chunk_queue.hpp"
#include "transport/incoming_adapter.hpp"

#include <deque>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "common/async.hpp"

namespace nl::transport {
namespace {

namespace asio = boost::asio;
using proto::frame_type;
using proto::goaway_code;

// A frame of stream credit is returned once the application has read this fraction of
// the window: large enough to keep WINDOW frames rare, small enough never to stall a sender.
constexpr std::uint32_t window_update_divisor = 4;
// Incoming streams the application has not accepted yet; beyond this they are refused.
constexpr std::size_t max_accept_backlog = 1024;
// Data chunks coalesced into one WebSocket message by the writer.
constexpr std::size_t max_items_per_message = 8;
constexpr std::size_t max_message_bytes = 512 * 1024;
// Upper bound on send credit; more means a broken or hostile peer.
constexpr std::uint64_t max_credit = std::uint64_t{1} << 31;

struct stream_state {
  stream_state(std::uint32_t i, const asio::any_io_executor& ex) : id(i), ev(ex) {}
  std::uint32_t id;
  bool awaiting_result = false;  // we sent OPEN, no OPEN_RESULT yet
  bool accepted = false;         // the peer's OPEN_RESULT said ok (opener side)
  bool answered = true;          // false while an incoming OPEN waits for accept/reject
  // receive side
  chunk_queue rx;
  std::uint64_t rx_allowed = 0;  // bytes the peer may still send before more WINDOW
  std::uint32_t rx_consumed = 0; // read by the application, not yet granted back
  bool rx_fin = false;
  // send side
  std::uint64_t tx_credit = 0;
  std::uint32_t peer_window = 0;
  bool tx_queued = false;        // one chunk of ours waits in the send queue
  bool fin_sent = false;
  // termination
  bool reset = false;
  bool in_map = true;
  error_code error;
  std::string message;
  std::vector<std::byte> envelope;  // the acceptor's end-to-end answer (opener side)
  std::unique_ptr<watchdog> answer_wd;  // opener: how long the answer may take
  async_event ev;
};
using state_ptr = std::shared_ptr<stream_state>;

struct out_item {
  state_ptr st;
  bytes data;
  bool fin = false;
};

class mux_session_impl;

class mux_stream final : public stream {
public:
  mux_stream(std::shared_ptr<mux_session_impl> s, state_ptr st) : s_(std::move(s)), st_(std::move(st)) {}
  ~mux_stream() override;
  std::uint32_t id() const noexcept override { return st_->id; }
  awaitable<result<bytes>> read() override;
  awaitable<error_code> write(bytes data) override;
  awaitable<error_code> shutdown_send() override;
  void reset(errc code, std::string_view message) override;
  const std::string& error_message() const noexcept override { return st_->message; }

private:
  std::shared_ptr<mux_session_impl> s_;
  state_ptr st_;
};

using mux_incoming = answerable_incoming<mux_session_impl, stream_state, mux_stream>;
using mux_opening = opening_adapter<mux_session_impl, stream_state, mux_stream>;

class mux_session_impl final : public session,
                               public std::enable_shared_from_this<mux_session_impl> {
public:
  mux_session_impl(std::unique_ptr<message_channel> ch, mux_options o)
      : ch_(std::move(ch)),
        opts_(std::move(o)),
        ex_(ch_->executor()),
        next_id_(opts_.initiator ? 1 : 2),
        writer_ev_(ex_),
        accept_ev_(ex_),
        closed_ev_(ex_),
        hello_ev_(ex_),
        ka_timer_(ex_),
        last_rx_(clock::now()) {
    if (opts_.early_data) {
      opts_.window = std::max(opts_.window, proto::early_window);  // early data counts against it
    }
  }

  void start() {
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

  // ---- session interface ----
  awaitable<open_outcome> open(open_request req, std::chrono::milliseconds timeout) override {
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

  awaitable<early_outcome> open_early(open_request req, std::chrono::milliseconds timeout) override {
    co_return open_now(std::move(req), timeout);
  }

  // Not a coroutine (see enqueue_open).
  early_outcome open_now(open_request req, std::chrono::milliseconds timeout) {
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

  awaitable<open_answer> wait_answer(state_ptr st) {
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

  awaitable<result<std::unique_ptr<incoming_stream>>> accept() override {
    auto self = shared_from_this();
    while (accept_q_.empty() && !closed_) {
      co_await accept_ev_.wait();
    }
    if (accept_q_.empty()) {
      co_return fail(errc::session_closed);
    }
    auto [st, req] = std::move(accept_q_.front());
    accept_q_.pop_front();
    co_return std::make_unique<mux_incoming>(self, std::move(st), std::move(req));
  }

  void drain(goaway_code code, std::string message) override {
    if (closed_ || local_goaway_) {
      return;
    }
    local_goaway_ = true;
    draining_ = true;
    proto::append_goaway(control_, {code, message});
    writer_ev_.notify();
    close_if_drained();
  }

  void close(goaway_code code, std::string message) override {
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

  awaitable<void> wait_closed() override {
    auto self = shared_from_this();
    while (!channel_done_) {
      co_await closed_ev_.wait();
    }
  }

  bool is_open() const noexcept override { return !closed_; }
  bool is_draining() const noexcept override { return draining_ || closed_; }
  const close_info& closed_by() const noexcept override { return close_info_; }
  std::size_t stream_count() const noexcept override { return streams_.size(); }
  std::string_view transport_name() const noexcept override { return ch_->name(); }
  std::string_view remote_address() const noexcept override { return ch_->remote_address(); }
  const std::string& identity() const noexcept override { return hello_ ? hello_->identity : empty_; }

  awaitable<result<proto::hello_body>> wait_hello(std::chrono::milliseconds timeout) {
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

  static open_outcome outcome_of(const std::shared_ptr<mux_session_impl>& self, const state_ptr& st) {
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

  // A new stream of ours with its OPEN queued and `timeout` set for the answer (then reset
  // with errc::timeout); null, and why in `code` / `why`, when the session cannot open one
  // now. On an early-data session the peer lets us send proto::early_window bytes before its
  // answer (which then grants the rest).
  state_ptr start_open(open_request req, std::chrono::milliseconds timeout, errc& code, std::string& why) {
    if (closed_ || draining_ || streams_.size() >= opts_.max_streams) {
      code = closed_ || draining_ ? errc::not_connected : errc::limit;
      why = closed_ ? "session closed" : draining_ ? "session draining" : "too many streams";
      return nullptr;
    }
    auto id = next_id_;
    next_id_ += 2;
    auto st = std::make_shared<stream_state>(id, ex_);
    st->awaiting_result = true;
    st->rx_allowed = opts_.window;
    if (opts_.early_data) {
      st->tx_credit = proto::early_window;
      st->peer_window = proto::early_window;
    }
    streams_.emplace(id, st);
    enqueue_open(id, std::move(req));
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

  // Not a coroutine on purpose: g++ 12 mis-destroys brace-initialised aggregates that live
  // in a coroutine frame (double free seen in open()); build such values in plain functions.
  void enqueue_open(std::uint32_t id, open_request req) {
    proto::open_body body;
    body.window = opts_.window;
    body.dest = std::move(req.dest);
    body.peer = std::move(req.peer);
    body.envelope = std::move(req.envelope);
    body.groups = std::move(req.groups);
    body.policy = std::move(req.policy);
    proto::append_open(control_, id, body);
    writer_ev_.notify();
  }

  // ---- used by stream handles ----
  awaitable<result<bytes>> stream_read(state_ptr st) {
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
    if (!st->rx_fin && st->in_map && st->answered && st->rx_consumed >= opts_.window / window_update_divisor) {
      proto::append_window(control_, st->id, st->rx_consumed);
      st->rx_allowed += st->rx_consumed;
      st->rx_consumed = 0;
      writer_ev_.notify();
    }
    co_return b;
  }

  awaitable<error_code> stream_write(state_ptr st, bytes data) {
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

  // A FIN may go before the answer only as early data, and never before our own answer.
  awaitable<void> stream_shutdown(state_ptr st) {
    auto self = shared_from_this();
    while (!st->reset && (!st->answered || (st->awaiting_result && !opts_.early_data))) {
      co_await st->ev.wait();
    }
    stream_fin(st);
  }

  void stream_fin(const state_ptr& st) {
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

  void reset_stream(stream_state& st, errc code, std::string_view message, bool send) {
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

  void stream_release(const state_ptr& st) {
    if (st->in_map && !st->reset) {
      reset_stream(*st, errc::aborted, "stream abandoned", true);
    }
  }

  void answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope) {
    st->answered = true;
    if (closed_) {
      return;
    }
    if (st->reset) {  // the opener gave up meanwhile
      return;
    }
    proto::open_result_body body;
    body.code = code;
    body.window = code == errc::ok ? opts_.window : 0;
    body.message = std::string(message);
    body.envelope = std::move(envelope);
    proto::append_open_result(control_, st->id, body);
    writer_ev_.notify();
    st->ev.notify();  // a deferred stream's writer may go on
    if (code == errc::ok) {
      // Early data already received was counted against proto::early_window.
      st->rx_allowed += opts_.window - (opts_.early_data ? proto::early_window : 0);
    } else {
      st->reset = true;
      st->error = make_error_code(code);
      erase(*st);
    }
  }

private:
  void erase(stream_state& st) {
    if (st.in_map) {
      st.in_map = false;
      streams_.erase(st.id);
      close_if_drained();
    }
  }

  void remove_if_finished(stream_state& st) {
    if (st.fin_sent && st.rx_fin) {
      erase(st);
    }
  }

  void close_if_drained() {
    if (draining_ && streams_.empty() && accept_q_.empty() && !closed_) {
      close(close_info_.remote ? close_info_.code : goaway_code::normal,
            close_info_.remote ? close_info_.message : "drained");
    }
  }

  bool is_old_id(std::uint32_t id) const {
    bool ours = (id % 2 == 1) == opts_.initiator;
    return ours ? id < next_id_ : id <= highest_peer_id_;
  }

  // Marks the session closed and fails every stream; the channel is closed by the writer.
  void finish(bool remote, goaway_code code, std::string message) {
    if (closed_) {
      return;
    }
    closed_ = true;
    draining_ = true;
    if (!close_info_.remote) {
      close_info_ = {remote, code, std::move(message)};
    }
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, st] : streams) {
      st->in_map = false;
      if (!st->reset) {
        st->reset = true;
        st->error = make_error_code(errc::session_closed);
        st->message = close_info_.message;
        st->rx.clear();
      }
      st->ev.notify();
    }
    accept_q_.clear();
    ka_timer_.cancel();
    accept_ev_.notify();
    hello_ev_.notify();
    writer_ev_.notify();
  }

  void protocol_error(std::string why) {
    spdlog::warn("{}: protocol error from peer: {}", opts_.log_name, why);
    close(goaway_code::protocol, std::move(why));
  }

  state_ptr find(std::uint32_t id, const char* what) {
    auto it = streams_.find(id);
    if (it != streams_.end()) {
      return it->second;
    }
    if (!is_old_id(id)) {
      protocol_error(std::string(what) + " for a stream that was never opened");
    }
    return nullptr;
  }

  void on_frame(const proto::frame_view& f) {
    auto id = f.header.stream_id;
    if (!opts_.hello && !hello_ && f.header.type != frame_type::hello) {
      protocol_error("first frame is not HELLO");
      return;
    }
    switch (f.header.type) {
      case frame_type::hello: {
        auto h = proto::decode_hello(f.payload);
        if (opts_.hello || hello_ || !h) {
          protocol_error("unexpected or malformed HELLO");
          return;
        }
        if (h->version != proto::protocol_version) {
          protocol_error("unsupported protocol version " + std::to_string(h->version));
          return;
        }
        hello_ = std::move(*h);
        hello_ev_.notify();
        return;
      }
      case frame_type::open: {
        bool ours = (id % 2 == 1) == opts_.initiator;
        if (ours || id <= highest_peer_id_) {
          protocol_error("OPEN with a stream id out of sequence");
          return;
        }
        highest_peer_id_ = id;
        auto b = proto::decode_open(f.payload);
        if (!b) {
          protocol_error("malformed OPEN");
          return;
        }
        auto refuse = [&](errc code, std::string_view msg) {
          proto::append_open_result(control_, id, {code, 0, std::string(msg)});
          writer_ev_.notify();
        };
        if (draining_) {
          refuse(errc::aborted, "session is draining");
          return;
        }
        if (streams_.size() >= opts_.max_streams || accept_q_.size() >= max_accept_backlog) {
          refuse(errc::limit, "too many streams on this session");
          return;
        }
        auto st = std::make_shared<stream_state>(id, ex_);
        st->answered = false;
        st->rx_allowed = opts_.early_data ? proto::early_window : 0;
        st->tx_credit = b->window;
        st->peer_window = b->window;
        streams_.emplace(id, st);
        accept_q_.emplace_back(st, make_open_request(std::move(b->dest), std::move(b->peer), std::move(b->envelope)));
        accept_q_.back().second.groups = std::move(b->groups);
        accept_q_.back().second.policy = std::move(b->policy);
        accept_ev_.notify();
        return;
      }
      case frame_type::open_result: {
        auto st = find(id, "OPEN_RESULT");
        if (!st) return;
        auto b = proto::decode_open_result(f.payload);
        if (!b || !st->awaiting_result) {
          protocol_error("unexpected or malformed OPEN_RESULT");
          return;
        }
        st->awaiting_result = false;
        st->answer_wd.reset();
        st->envelope = std::move(b->envelope);
        if (b->code == errc::ok) {
          // The window counts the early data the peer let us send before its answer.
          std::uint32_t early = opts_.early_data ? proto::early_window : 0;
          if (b->window < early) {
            protocol_error("OPEN_RESULT window smaller than the early-data window");
            return;
          }
          st->tx_credit += b->window - early;
          st->peer_window = b->window;
          st->accepted = true;
        } else {
          st->reset = true;
          st->error = make_error_code(b->code);
          st->message = std::move(b->message);
          erase(*st);
        }
        st->ev.notify();
        return;
      }
      case frame_type::data: {
        auto st = find(id, "DATA");
        if (!st) return;
        if ((!st->answered && !opts_.early_data) || st->awaiting_result || st->rx_fin) {
          protocol_error("DATA on a stream that cannot receive it");
          return;
        }
        if (f.payload.size() > st->rx_allowed) {
          protocol_error("flow-control window exceeded");
          return;
        }
        if (st->reset || f.payload.empty()) {
          return;
        }
        st->rx_allowed -= f.payload.size();
        st->rx.push_back(bytes::copy_of(f.payload));
        st->ev.notify();
        return;
      }
      case frame_type::window: {
        auto st = find(id, "WINDOW");
        if (!st) return;
        auto inc = proto::decode_window(f.payload);
        if (!inc || st->tx_credit + *inc > max_credit) {
          protocol_error("malformed WINDOW or credit overflow");
          return;
        }
        st->tx_credit += *inc;
        st->ev.notify();
        return;
      }
      case frame_type::fin: {
        auto st = find(id, "FIN");
        if (!st) return;
        if (!f.payload.empty() || st->rx_fin || (!st->answered && !opts_.early_data) || st->awaiting_result) {
          protocol_error("unexpected FIN");
          return;
        }
        st->rx_fin = true;
        st->ev.notify();
        remove_if_finished(*st);
        return;
      }
      case frame_type::reset: {
        auto b = proto::decode_reset(f.payload);
        if (!b) {
          protocol_error("malformed RESET");
          return;
        }
        auto it = streams_.find(id);
        if (it == streams_.end()) {
          return;  // already gone on our side: nothing to do
        }
        reset_stream(*it->second, b->code, b->message, false);
        return;
      }
      case frame_type::ping: {
        auto v = proto::decode_ping(f.payload);
        if (!v) {
          protocol_error("malformed PING");
          return;
        }
        proto::append_ping(control_, frame_type::pong, *v);
        writer_ev_.notify();
        return;
      }
      case frame_type::pong:
        return;  // liveness is any received message
      case frame_type::goaway: {
        auto b = proto::decode_goaway(f.payload);
        if (!b) {
          protocol_error("malformed GOAWAY");
          return;
        }
        spdlog::debug("{}: peer sent GOAWAY: {} ({})", opts_.log_name, proto::describe(b->code), b->message);
        close_info_ = {true, b->code, b->message};
        draining_ = true;
        close_if_drained();
        return;
      }
    }
  }

  awaitable<void> reader() {
    auto self = shared_from_this();
    while (!closed_) {
      auto msg = co_await ch_->read_message();
      if (!msg) {
        if (!closed_) {
          auto why = close_info_.remote ? close_info_.message : "connection lost: " + msg.error().message();
          finish(true, close_info_.remote ? close_info_.code : goaway_code::normal, why);
          ch_->close_now();
        }
        break;
      }
      last_rx_ = clock::now();
      auto data = *msg;
      while (!data.empty() && !closed_) {
        auto r = proto::parse_frame(data);
        if (r.status != proto::parse_status::ok) {
          protocol_error(r.status == proto::parse_status::incomplete ? "frame truncated at message end" : r.error);
          break;
        }
        on_frame(r.frame);
        data = data.subspan(r.frame.consumed);
      }
    }
  }

  // Moves whole control frames, at most one message's worth, from control_ into `out`; the
  // rest waits for the next message (the peer refuses messages over ws::max_message).
  void take_control(std::vector<std::byte>& out) {
    out.clear();
    if (control_.size() <= max_message_bytes) {
      std::swap(out, control_);
      return;
    }
    std::size_t take = 0;
    while (take < control_.size()) {
      auto r = proto::parse_frame(std::span<const std::byte>(control_).subspan(take));
      if (r.status != proto::parse_status::ok) {
        take = control_.size();  // impossible: we encoded them; send as is rather than spin
        break;
      }
      if (take > 0 && take + r.frame.consumed > max_message_bytes) {
        break;
      }
      take += r.frame.consumed;
    }
    out.assign(control_.begin(), control_.begin() + static_cast<std::ptrdiff_t>(take));
    control_.erase(control_.begin(), control_.begin() + static_cast<std::ptrdiff_t>(take));
  }

  awaitable<void> writer() {
    auto self = shared_from_this();
    std::vector<std::byte> ctl;
    std::vector<asio::const_buffer> bufs;
    std::vector<std::array<std::byte, proto::frame_header_size>> headers;
    std::vector<out_item> items;
    headers.reserve(max_items_per_message);
    items.reserve(max_items_per_message);
    for (;;) {
      while (!closed_ && control_.empty() && data_q_.empty()) {
        co_await writer_ev_.wait();
      }
      // Closed by close(): flush the GOAWAY and the data of streams that had finished
      // cleanly (reset ones are skipped below), then stop. Closed by a failure: stop now.
      if (closed_ && (!closing_ || (control_.empty() && data_q_.empty()))) {
        break;
      }
      take_control(ctl);
      bufs.clear();
      headers.clear();
      items.clear();
      std::size_t total = ctl.size();
      while (!data_q_.empty() && items.size() < max_items_per_message && total < max_message_bytes) {
        out_item it = std::move(data_q_.front());
        data_q_.pop_front();
        if (!it.fin) {
          it.st->tx_queued = false;
          it.st->ev.notify();  // its writer may queue the next chunk while this one is sent
        }
        if (it.st->reset) {
          continue;
        }
        if (it.fin) {
          headers.push_back({});
          proto::encode_header({frame_type::fin, 0, it.st->id, 0}, headers.back());
        } else {
          headers.push_back(proto::data_header(it.st->id, static_cast<std::uint32_t>(it.data.size())));
        }
        total += proto::frame_header_size + it.data.size();
        items.push_back(std::move(it));
      }
      if (!ctl.empty()) {
        bufs.emplace_back(ctl.data(), ctl.size());
      }
      for (std::size_t i = 0; i < items.size(); ++i) {
        bufs.emplace_back(headers[i].data(), headers[i].size());
        if (!items[i].data.empty()) {
          bufs.push_back(items[i].data.buffer());
        }
      }
      if (bufs.empty()) {
        if (closing_ && control_.empty() && data_q_.empty()) {
          break;
        }
        continue;
      }
      auto ec = co_await ch_->write_message(bufs);
      items.clear();  // frees the sent chunks now, not at the next message
      if (ec) {
        finish(true, goaway_code::normal, "connection lost: " + ec.message());
        break;
      }
      if (closing_ && control_.empty() && data_q_.empty()) {
        break;
      }
    }
    if (closing_) {
      // Orderly WebSocket close after our GOAWAY; bounded by the timer set in close().
      co_await ch_->close_gracefully();
    }
    ch_->close_now();
    channel_done_ = true;
    closed_ev_.notify();
  }

  awaitable<void> keepalive() {
    auto self = shared_from_this();
    std::uint64_t seq = 0;
    auto interval = std::min(opts_.keepalive, opts_.keepalive_timeout / 3);
    while (!closed_) {
      ka_timer_.expires_after(interval);
      error_code ec;
      co_await ka_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (closed_) {
        break;
      }
      auto silent = clock::now() - last_rx_;
      if (silent > opts_.keepalive_timeout) {
        spdlog::warn("{}: peer silent for {} ms; closing", opts_.log_name,
                     std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
        finish(false, goaway_code::timeout, "peer unresponsive (keepalive timeout)");
        ch_->close_now();
        break;
      }
      proto::append_ping(control_, frame_type::ping, ++seq);
      writer_ev_.notify();
    }
  }

  std::unique_ptr<message_channel> ch_;
  mux_options opts_;
  asio::any_io_executor ex_;
  std::unordered_map<std::uint32_t, state_ptr> streams_;
  std::deque<std::pair<state_ptr, open_request>> accept_q_;
  std::uint32_t next_id_;
  std::uint32_t highest_peer_id_ = 0;
  std::vector<std::byte> control_;  // encoded control frames waiting for the writer
  std::deque<out_item> data_q_;
  async_event writer_ev_, accept_ev_, closed_ev_, hello_ev_;
  asio::steady_timer ka_timer_;
  clock::time_point last_rx_;
  std::optional<proto::hello_body> hello_;
  close_info close_info_;
  bool closed_ = false;
  bool closing_ = false;
  bool draining_ = false;
  bool local_goaway_ = false;
  bool channel_done_ = false;
  std::string empty_;
};

mux_stream::~mux_stream() { s_->stream_release(st_); }
awaitable<result<bytes>> mux_stream::read() { return s_->stream_read(st_); }
awaitable<error_code> mux_stream::write(bytes data) { return s_->stream_write(st_, std::move(data)); }
awaitable<error_code> mux_stream::shutdown_send() {
  co_await s_->stream_shutdown(st_);
  co_return error_code{};
}
void mux_stream::reset(errc code, std::string_view message) { s_->reset_stream(*st_, code, message, true); }

}  // namespace

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
