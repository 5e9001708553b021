// The mux session's send side: the writer, which packs control frames and up to
// max_items_per_message DATA chunks into one message, and the keepalive
// (transport/mux/mux_internal.hpp).
#include "transport/mux/mux_internal.hpp"

#include <array>

#include <spdlog/spdlog.h>

namespace nl::transport::mux_detail {

void mux_session_impl::take_control(std::vector<std::byte>& out) {
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

awaitable<void> mux_session_impl::writer() {
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
    if (reader_held_) {
      control_sent_ev_.notify();  // rechecks once this batch is out of control_
    }
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

awaitable<void> mux_session_impl::keepalive() {
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

}  // namespace nl::transport::mux_detail
