#include "transport/datagram.hpp"

#include <cstring>

#include "transport/relay.hpp"

namespace nl::transport {

bytes frame_datagram(std::span<const std::byte> payload) {
  auto b = bytes::with_room(proto::datagram_header_size + payload.size(), relay_headroom, relay_tailroom);
  auto h = proto::datagram_header(payload.size());
  auto room = b.prepare();
  std::memcpy(room.data(), h.data(), h.size());
  if (!payload.empty()) {
    std::memcpy(static_cast<std::byte*>(room.data()) + h.size(), payload.data(), payload.size());
  }
  b.commit(h.size() + payload.size());
  return b;
}

awaitable<error_code> write_datagram(stream& s, std::span<const std::byte> payload) {
  return s.write(frame_datagram(payload));
}

awaitable<result<std::optional<bytes>>> datagram_reader::next() {
  for (;;) {
    auto v = proto::parse_datagram(buf_.span());
    if (v.status == proto::parse_status::malformed) {
      s_.reset(errc::protocol, "malformed datagram length");
      co_return fail(errc::protocol);
    }
    if (v.status == proto::parse_status::ok) {
      auto d = bytes::copy_of(v.payload);
      buf_.consume(v.consumed);
      co_return std::optional<bytes>(std::move(d));
    }
    auto r = co_await s_.read();
    if (!r) {
      co_return fail(r.error());
    }
    if (r->empty()) {
      if (!buf_.empty()) {
        s_.reset(errc::protocol, "flow ended inside a datagram");
        co_return fail(errc::protocol);
      }
      co_return std::optional<bytes>();
    }
    buf_.append(std::move(*r));
  }
}

bool datagram_flow::push(std::span<const std::byte> payload) {
  if (ended_ || queued_ + payload.size() > queue_limit_) {
    return false;
  }
  last_ = clock::now();
  queue_.push_back(frame_datagram(payload));
  queued_ += payload.size();
  ev_.notify();
  return true;
}

void datagram_flow::end(errc code, std::string_view why) {
  if (ended_) {
    return;
  }
  ended_ = true;
  if (s_) {
    s_->reset(code, why);
  }
  ev_.notify();
  idle_.cancel();
}

awaitable<error_code> datagram_flow::run(std::unique_ptr<stream> s, std::function<void(std::span<const std::byte>)> deliver,
                                         clock::duration idle_timeout, std::function<void()> on_idle) {
  if (ended_) {
    s->reset(errc::aborted, "flow closed");
    co_return error_code{};
  }
  s_ = std::move(s);
  error_code why;
  auto up = [&]() -> awaitable<void> {
    while (!ended_) {
      if (queue_.empty()) {
        co_await ev_.wait();
        continue;
      }
      auto d = std::move(queue_.front());
      queue_.pop_front();
      queued_ -= d.size() - proto::datagram_header_size;
      if (auto ec = co_await s_->write(std::move(d))) {
        if (!ended_) why = ec;
        break;
      }
    }
    end(errc::aborted, "flow closed");
  };
  auto down = [&]() -> awaitable<void> {
    datagram_reader rd(*s_);
    for (;;) {
      auto d = co_await rd.next();
      if (!d || !*d) {
        if (!d && !ended_) why = d.error();
        break;
      }
      last_ = clock::now();
      deliver((*d)->span());
    }
    end(errc::aborted, "flow closed");
  };
  co_await when_both(when_both(up(), down()), expire_when_idle(idle_, last_, idle_timeout, ended_, [&] {
    if (on_idle) on_idle();
    end(errc::timeout, "UDP flow idle");
  }));
  co_return why;
}

}  // namespace nl::transport
