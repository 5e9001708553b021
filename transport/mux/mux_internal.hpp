// The frame multiplexer's session (internal to transport/mux/): one message_channel
// carries many streams, each with credit-based flow control. mux_session.cpp holds the
// session and stream interface, mux_receive.cpp the reader and the handling of each
// received frame, mux_writer.cpp the writer (control frames and coalesced DATA) and the
// keepalive. Everything runs on the session's executor, one strand of control.
#pragma once

#include "transport/mux/mux_session.hpp"

#include "transport/accept_queue.hpp"
#include "transport/chunk_queue.hpp"
#include "transport/incoming_adapter.hpp"

#include <deque>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "common/async.hpp"

namespace nl::transport::mux_detail {

namespace asio = boost::asio;
using proto::frame_type;
using proto::goaway_code;

// A frame of stream credit is returned once the application has read this fraction of
// the window: large enough to keep WINDOW frames rare, small enough never to stall a sender.
constexpr std::uint32_t window_update_divisor = 4;
// The smallest receive window a stream is given when the session's windows are all
// taken (mux_options::session_window); at least the early-data window it must cover.
constexpr std::uint32_t min_stream_window = 64 * 1024;
static_assert(min_stream_window >= proto::early_window);
// Incoming streams the application has not accepted yet; beyond this they are refused.
constexpr std::size_t max_accept_backlog = 1024;
// Data chunks coalesced into one WebSocket message by the writer.
constexpr std::size_t max_items_per_message = 8;
constexpr std::size_t max_message_bytes = 512 * 1024;
// Control frames waiting to be sent beyond which the reader takes no further message from
// the peer until the writer has sent them. Answers to the peer (PONG, refused OPENs, credit
// for its data) would otherwise pile up without bound when a peer keeps sending but stops
// reading; a peer that reads is never held back (a full batch of OPENs is far below this).
constexpr std::size_t max_control_backlog = 1024 * 1024;
// Received DATA payloads below small_payload share chunks of small_chunk bytes: the window
// counts payload bytes, and a buffer per 1-byte frame would cost some 70 bytes of memory per
// byte of window. Worst case with gathering: about twice the window.
constexpr std::size_t small_payload = 1024;
constexpr std::size_t small_chunk = 4 * 1024;
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
  std::uint32_t rx_window = 0;   // our receive window while counted in the session's total, else 0
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
  mux_session_impl(std::unique_ptr<message_channel> ch, mux_options o);
  void start();

  // ---- session interface ----
  awaitable<open_outcome> open(open_request req, std::chrono::milliseconds timeout) override;
  awaitable<early_outcome> open_early(open_request req, std::chrono::milliseconds timeout) override;

  // Not a coroutine (see enqueue_open).
  early_outcome open_now(open_request req, std::chrono::milliseconds timeout);
  awaitable<open_answer> wait_answer(state_ptr st);
  awaitable<result<std::unique_ptr<incoming_stream>>> accept() override;
  void drain(goaway_code code, std::string message) override;
  void close(goaway_code code, std::string message) override;
  awaitable<void> wait_closed() override;
  bool is_open() const noexcept override { return !closed_; }
  bool is_draining() const noexcept override { return draining_ || closed_; }
  const close_info& closed_by() const noexcept override { return close_info_; }
  std::size_t stream_count() const noexcept override { return streams_.size(); }
  std::string_view transport_name() const noexcept override { return ch_->name(); }
  std::string_view remote_address() const noexcept override { return ch_->remote_address(); }
  const std::string& identity() const noexcept override { return hello_ ? hello_->identity : empty_; }

  awaitable<result<proto::hello_body>> wait_hello(std::chrono::milliseconds timeout);
  static open_outcome outcome_of(const std::shared_ptr<mux_session_impl>& self, const state_ptr& st);

  // A new stream of ours with its OPEN queued and `timeout` set for the answer (then reset
  // with errc::timeout); null, and why in `code` / `why`, when the session cannot open one
  // now. On an early-data session the peer lets us send proto::early_window bytes before its
  // answer (which then grants the rest).
  state_ptr start_open(open_request req, std::chrono::milliseconds timeout, errc& code, std::string& why);

  // Not a coroutine on purpose: g++ 12 mis-destroys brace-initialised aggregates that live
  // in a coroutine frame (double free seen in open()); build such values in plain functions.
  void enqueue_open(std::uint32_t id, std::uint32_t window, open_request req);
  // A new stream's receive window, taken from what is left of opts_.session_window.
  void take_window(stream_state& st);
  // Extra credit for a stream whose window is below opts_.window, as the session allows.
  std::uint32_t grow_window(stream_state& st);
  // Gives the stream's window back to the session once it holds no data and no more can
  // come (the peer's FIN, or the stream finished or reset). Safe to call at any time.
  void release_window(stream_state& st);

  // ---- used by stream handles ----
  awaitable<result<bytes>> stream_read(state_ptr st);
  awaitable<error_code> stream_write(state_ptr st, bytes data);

  // A FIN may go before the answer only as early data, and never before our own answer.
  awaitable<void> stream_shutdown(state_ptr st);
  void stream_fin(const state_ptr& st);
  void reset_stream(stream_state& st, errc code, std::string_view message, bool send);
  void stream_release(const state_ptr& st);
  void answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope);

private:
  void erase(stream_state& st);
  void remove_if_finished(stream_state& st);
  void close_if_drained();
  bool is_old_id(std::uint32_t id) const;

  // Marks the session closed and fails every stream; the channel is closed by the writer.
  void finish(bool remote, goaway_code code, std::string message);
  void protocol_error(std::string why);
  state_ptr find(std::uint32_t id, const char* what);
  void on_frame(const proto::frame_view& f);
  awaitable<void> reader();

  // Moves whole control frames, at most one message's worth, from control_ into `out`; the
  // rest waits for the next message (the peer refuses messages over ws::max_message).
  void take_control(std::vector<std::byte>& out);
  awaitable<void> writer();
  awaitable<void> keepalive();

  std::unique_ptr<message_channel> ch_;
  mux_options opts_;
  asio::any_io_executor ex_;
  std::unordered_map<std::uint32_t, state_ptr> streams_;
  std::uint64_t rx_committed_ = 0;  // sum of the streams' rx_window
  accept_queue<stream_state> accept_q_;
  std::uint32_t next_id_;
  std::uint32_t highest_peer_id_ = 0;
  std::vector<std::byte> control_;  // encoded control frames waiting for the writer
  std::deque<out_item> data_q_;
  async_event writer_ev_, closed_ev_, hello_ev_;
  async_event control_sent_ev_;  // the writer took control frames, for a reader held back
  bool reader_held_ = false;     // the reader waits for control_ to drain (max_control_backlog)
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

}  // namespace nl::transport::mux_detail
