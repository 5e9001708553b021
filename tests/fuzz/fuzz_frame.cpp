// Feeds arbitrary bytes to the frame parser as a session reader would (frames back to
// back), decodes every frame's payload, and checks that whatever decodes re-encodes to a
// frame that parses and decodes to the same values. Also runs every decoder on the raw
// input, as if it were a payload.
#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/frame.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::proto;

namespace {

// The single frame in `wire`, which an encoder just produced.
frame_view reparse(const std::vector<std::byte>& wire, frame_type t) {
  auto r = parse_frame(wire);
  NL_FUZZ_CHECK(r.status == parse_status::ok);
  NL_FUZZ_CHECK(r.frame.consumed == wire.size());
  NL_FUZZ_CHECK(r.frame.header.type == t);
  return r.frame;
}

void round_trip(const frame_view& f) {
  auto id = f.header.stream_id;
  auto p = f.payload;
  std::vector<std::byte> out;
  switch (f.header.type) {
    case frame_type::hello:
      if (auto b = decode_hello(p)) {
        append_hello(out, *b);
        auto d = decode_hello(reparse(out, frame_type::hello).payload);
        NL_FUZZ_CHECK(d && d->version == b->version && d->keepalive_ms == b->keepalive_ms &&
                      d->max_streams == b->max_streams && d->identity == b->identity && d->info == b->info);
      }
      break;
    case frame_type::open:
      if (auto b = decode_open(p)) {
        append_open(out, id, *b);
        auto d = decode_open(reparse(out, frame_type::open).payload);
        NL_FUZZ_CHECK(d && d->window == b->window && d->dest.host == b->dest.host &&
                      d->dest.port == b->dest.port && d->dest.protocol == b->dest.protocol &&
                      d->peer == b->peer && d->envelope == b->envelope);
      }
      break;
    case frame_type::open_result:
      if (auto b = decode_open_result(p)) {
        append_open_result(out, id, *b);
        auto d = decode_open_result(reparse(out, frame_type::open_result).payload);
        // Encoders cap messages at 1024 bytes.
        NL_FUZZ_CHECK(d && d->code == b->code && d->window == b->window &&
                      d->message == b->message.substr(0, 1024));
      }
      break;
    case frame_type::window:
      if (auto b = decode_window(p)) {
        append_window(out, id, *b);
        NL_FUZZ_CHECK(decode_window(reparse(out, frame_type::window).payload) == *b);
      }
      break;
    case frame_type::reset:
      if (auto b = decode_reset(p)) {
        append_reset(out, id, *b);
        auto d = decode_reset(reparse(out, frame_type::reset).payload);
        NL_FUZZ_CHECK(d && d->code == b->code && d->message == b->message.substr(0, 1024));
      }
      break;
    case frame_type::ping:
    case frame_type::pong:
      if (auto b = decode_ping(p)) {
        append_ping(out, f.header.type, *b);
        NL_FUZZ_CHECK(decode_ping(reparse(out, f.header.type).payload) == *b);
      }
      break;
    case frame_type::goaway:
      if (auto b = decode_goaway(p)) {
        append_goaway(out, *b);
        auto d = decode_goaway(reparse(out, frame_type::goaway).payload);
        NL_FUZZ_CHECK(d && d->code == b->code && d->message == b->message.substr(0, 1024));
      }
      break;
    case frame_type::data: {
      auto h = data_header(id, static_cast<std::uint32_t>(p.size()));
      out.assign(h.begin(), h.end());
      out.insert(out.end(), p.begin(), p.end());
      NL_FUZZ_CHECK(reparse(out, frame_type::data).payload.size() == p.size());
      break;
    }
    case frame_type::fin:
      append_fin(out, id);
      reparse(out, frame_type::fin);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  (void)decode_hello(in);
  (void)decode_open(in);
  (void)decode_open_result(in);
  (void)decode_window(in);
  (void)decode_reset(in);
  (void)decode_ping(in);
  (void)decode_goaway(in);
  (void)valid_host(std::string_view(reinterpret_cast<const char*>(data), size));

  while (!in.empty()) {
    auto r = parse_frame(in);
    if (r.status == parse_status::malformed) {
      NL_FUZZ_CHECK(r.error != nullptr);
      break;
    }
    if (r.status == parse_status::incomplete) {
      break;
    }
    NL_FUZZ_CHECK(r.frame.consumed == frame_header_size + r.frame.payload.size());
    NL_FUZZ_CHECK(r.frame.consumed <= in.size());
    NL_FUZZ_CHECK(r.frame.payload.data() == in.data() + frame_header_size);
    round_trip(r.frame);
    in = in.subspan(r.frame.consumed);
  }
  return 0;
}
