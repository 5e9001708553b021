// Feeds arbitrary bytes to the frame parser as a session reader would (frames back to
// back), decodes every frame's payload, and checks that whatever decodes re-encodes to a
// frame that parses and decodes to the same values. Also runs every decoder on the raw
// input, as if it were a payload: the frame payload decoders, the end-to-end request and
// verdict decoders (with the same round trip), and the datagram framing of UDP streams.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/datagram.hpp"
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
                      d->peer == b->peer && d->envelope == b->envelope && d->groups == b->groups &&
                      d->policy == b->policy);
        // What the decoder promises: with an envelope the target is hidden completely
        // (protocol 0, no host, port 0); without one it is complete and valid.
        NL_FUZZ_CHECK(b->window != 0);
        NL_FUZZ_CHECK((b->dest.protocol == transport_protocol::hidden) == !b->envelope.empty());
        NL_FUZZ_CHECK(b->envelope.empty() || (b->dest.host.empty() && b->dest.port == 0));
        NL_FUZZ_CHECK(!b->envelope.empty() || (valid_host(b->dest.host) && b->dest.port != 0));
      }
      break;
    case frame_type::open_result:
      if (auto b = decode_open_result(p)) {
        append_open_result(out, id, *b);
        auto d = decode_open_result(reparse(out, frame_type::open_result).payload);
        // Encoders cap messages at 1024 bytes.
        NL_FUZZ_CHECK(d && d->code == b->code && d->window == b->window &&
                      d->message == b->message.substr(0, 1024) && d->envelope == b->envelope);
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

// The end-to-end handshake payloads: whatever decodes re-encodes to the same bytes (the
// request) or to a value that decodes the same (the verdict; the encoder caps messages at
// 512 bytes).
void e2e_payloads(std::span<const std::byte> in) {
  if (auto t = decode_e2e_request(in)) {
    NL_FUZZ_CHECK(valid_host(t->host) && t->port != 0);
    NL_FUZZ_CHECK(t->protocol == transport_protocol::tcp || t->protocol == transport_protocol::udp);
    auto enc = encode_e2e_request(*t);
    NL_FUZZ_CHECK(std::equal(enc.begin(), enc.end(), in.begin(), in.end()));
    auto d = decode_e2e_request(enc);
    NL_FUZZ_CHECK(d && d->host == t->host && d->port == t->port && d->protocol == t->protocol);
  }
  if (auto v = decode_e2e_verdict(in)) {
    auto code = static_cast<unsigned>(v->code);
    NL_FUZZ_CHECK(code < 64);
    auto enc = encode_e2e_verdict(*v);
    if (v->message.size() <= 512) {
      NL_FUZZ_CHECK(std::equal(enc.begin(), enc.end(), in.begin(), in.end()));
    }
    auto d = decode_e2e_verdict(enc);
    NL_FUZZ_CHECK(d && d->code == v->code && d->message == v->message.substr(0, 512));
  }
}

// UDP stream bytes: datagrams back to back, each a u16 length and that many bytes.
void datagrams(std::span<const std::byte> in) {
  for (;;) {
    auto v = parse_datagram(in);
    if (v.status == parse_status::incomplete) {
      NL_FUZZ_CHECK(v.consumed == 0);
      if (in.size() >= datagram_header_size) {
        auto len = (std::to_integer<std::size_t>(in[0]) << 8) | std::to_integer<std::size_t>(in[1]);
        NL_FUZZ_CHECK(len <= max_datagram && in.size() < datagram_header_size + len);
      }
      break;
    }
    if (v.status == parse_status::malformed) {
      NL_FUZZ_CHECK(in.size() >= datagram_header_size && v.consumed == 0);
      auto len = (std::to_integer<std::size_t>(in[0]) << 8) | std::to_integer<std::size_t>(in[1]);
      NL_FUZZ_CHECK(len > max_datagram);
      break;
    }
    NL_FUZZ_CHECK(v.payload.size() <= max_datagram);
    NL_FUZZ_CHECK(v.consumed == datagram_header_size + v.payload.size() && v.consumed <= in.size());
    NL_FUZZ_CHECK(v.payload.data() == in.data() + datagram_header_size);
    auto h = datagram_header(v.payload.size());
    NL_FUZZ_CHECK(h[0] == in[0] && h[1] == in[1]);
    // One byte short is incomplete: the parser never guesses a shorter datagram.
    NL_FUZZ_CHECK(parse_datagram(in.first(v.consumed - 1)).status == parse_status::incomplete);
    in = in.subspan(v.consumed);
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
  e2e_payloads(in);
  datagrams(in);

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
