// The mux session's receive side: the reader, each received frame checked against the
// stream's state and flow control, and the session's end (transport/mux/mux_internal.hpp).
#include "transport/mux/mux_internal.hpp"

#include <cstring>

#include <spdlog/spdlog.h>

namespace nl::transport::mux_detail {

namespace {

// A payload joins the last unread chunk when it fits there. Otherwise it gets a chunk of
// its own: exactly its size, unless it is small and others are already waiting (a reader
// that keeps up takes each payload as it comes, in a buffer of its size); then a
// small_chunk buffer that the next small payloads fill.
void push_rx(chunk_queue& rx, std::span<const std::byte> payload) {
  if (!rx.empty()) {
    if (auto room = rx.back().prepare(); room.size() >= payload.size()) {
      std::memcpy(room.data(), payload.data(), payload.size());
      rx.back().commit(payload.size());
      return;
    }
    if (payload.size() < small_payload) {
      bytes b(small_chunk);
      std::memcpy(b.data(), payload.data(), payload.size());
      b.commit(payload.size());
      rx.push_back(std::move(b));
      return;
    }
  }
  rx.push_back(bytes::copy_of(payload));
}

}  // namespace

void mux_session_impl::erase(stream_state& st) {
  if (st.in_map) {
    st.in_map = false;
    release_window(st);  // with data left unread: once the application has read it or let go
    streams_.erase(st.id);
    close_if_drained();
  }
}

void mux_session_impl::remove_if_finished(stream_state& st) {
  if (st.fin_sent && st.rx_fin) {
    erase(st);
  }
}

void mux_session_impl::close_if_drained() {
  if (draining_ && streams_.empty() && accept_q_.empty() && !closed_) {
    close(close_info_.remote ? close_info_.code : goaway_code::normal,
          close_info_.remote ? close_info_.message : "drained");
  }
}

bool mux_session_impl::is_old_id(std::uint32_t id) const {
  bool ours = (id % 2 == 1) == opts_.initiator;
  return ours ? id < next_id_ : id <= highest_peer_id_;
}

void mux_session_impl::finish(bool remote, goaway_code code, std::string message) {
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
    fail_with_session(*st, close_info_.message);
  }
  accept_q_.close();
  ka_timer_.cancel();
  hello_ev_.notify();
  control_sent_ev_.notify();
  writer_ev_.notify();
}

void mux_session_impl::protocol_error(std::string why) {
  spdlog::warn("{}: protocol error from peer: {}", opts_.log_name, why);
  close(goaway_code::protocol, std::move(why));
}

state_ptr mux_session_impl::find(std::uint32_t id, const char* what) {
  auto it = streams_.find(id);
  if (it != streams_.end()) {
    return it->second;
  }
  if (!is_old_id(id)) {
    protocol_error(std::string(what) + " for a stream that was never opened");
  }
  return nullptr;
}

void mux_session_impl::on_frame(const proto::frame_view& f) {
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
      accept_q_.push(st, std::move(*b));
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
      push_rx(st->rx, f.payload);
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
      release_window(*st);
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

awaitable<void> mux_session_impl::reader() {
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
    // Like TCP's own backpressure: a peer that does not read our answers is not read either.
    while (!closed_ && control_.size() > max_control_backlog) {
      reader_held_ = true;
      co_await control_sent_ev_.wait();
    }
    reader_held_ = false;
  }
}

}  // namespace nl::transport::mux_detail
