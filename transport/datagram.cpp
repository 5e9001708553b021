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

}  // namespace nl::transport
