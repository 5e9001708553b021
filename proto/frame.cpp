#include "proto/frame.hpp"

#include <cctype>
#include <cstring>

namespace nl::proto {
namespace {

// Bounds-checked big-endian reader over a span; any overrun marks it failed.
class reader {
public:
  explicit reader(std::span<const std::byte> s) : s_(s) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == s_.size(); }
  std::uint64_t uint(std::size_t n) {
    if (!need(n)) return 0;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | std::to_integer<std::uint8_t>(s_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::span<const std::byte> take(std::size_t n) {
    if (!need(n)) return {};
    auto r = s_.subspan(pos_, n);
    pos_ += n;
    return r;
  }
  std::string str(std::size_t n) {
    auto b = take(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

private:
  bool need(std::size_t n) {
    if (!ok_ || s_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::span<const std::byte> s_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void put(std::vector<std::byte>& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = n; i-- > 0;) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
void put_str(std::vector<std::byte>& out, std::string_view s, std::size_t len_bytes) {
  put(out, s.size(), len_bytes);
  auto p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

// Reserves a header, lets `body` append the payload, then fills the header in.
template <class F>
void append_frame(std::vector<std::byte>& out, frame_type t, std::uint32_t id, F&& body) {
  auto start = out.size();
  out.resize(start + frame_header_size);
  body();
  frame_header h{t, 0, id, static_cast<std::uint32_t>(out.size() - start - frame_header_size)};
  encode_header(h, std::span<std::byte, frame_header_size>(out.data() + start, frame_header_size));
}

bool valid_text(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool valid_code(std::uint64_t c) { return c >= 1 && c < 64; }

// Group names as tokens carry them: 1..64 of [A-Za-z0-9._-].
bool valid_group(std::string_view g) {
  if (g.empty() || g.size() > 64) return false;
  for (unsigned char c : g) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

const char* describe(goaway_code c) noexcept {
  switch (c) {
    case goaway_code::normal: return "normal shutdown";
    case goaway_code::replaced: return "replaced by a newer session with the same name";
    case goaway_code::revoked: return "token revoked";
    case goaway_code::protocol: return "protocol error";
    case goaway_code::timeout: return "keepalive timeout";
    case goaway_code::overloaded: return "gateway overloaded";
  }
  return "unknown reason";
}

bool valid_host(std::string_view host) noexcept {
  if (host.empty() || host.size() > 255) return false;
  for (unsigned char c : host) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '[' || c == ']') return false;
  }
  return true;
}

parse_result parse_frame(std::span<const std::byte> in) {
  parse_result r;
  if (in.size() < frame_header_size) {
    r.status = parse_status::incomplete;
    return r;
  }
  reader rd(in.first(frame_header_size));
  auto type = static_cast<std::uint8_t>(rd.uint(1));
  auto flags = static_cast<std::uint8_t>(rd.uint(1));
  auto reserved = rd.uint(2);
  auto id = static_cast<std::uint32_t>(rd.uint(4));
  auto len = static_cast<std::uint32_t>(rd.uint(4));
  auto bad = [&](const char* why) {
    r.status = parse_status::malformed;
    r.error = why;
    return r;
  };
  if (type < 0x01 || type > 0x0a) return bad("unknown frame type");
  if (flags != 0 || reserved != 0) return bad("reserved bits set");
  auto t = static_cast<frame_type>(type);
  bool session_level = t == frame_type::hello || t == frame_type::ping ||
                       t == frame_type::pong || t == frame_type::goaway;
  if (session_level != (id == 0)) return bad("stream id does not fit the frame type");
  std::uint32_t limit = t == frame_type::data ? max_data_payload : max_control_payload;
  if (len > limit) return bad("frame payload too large");
  if (in.size() - frame_header_size < len) {
    r.status = parse_status::incomplete;
    return r;
  }
  r.status = parse_status::ok;
  r.frame.header = {t, flags, id, len};
  r.frame.payload = in.subspan(frame_header_size, len);
  r.frame.consumed = frame_header_size + len;
  return r;
}

std::optional<hello_body> decode_hello(std::span<const std::byte> p) {
  reader rd(p);
  hello_body b;
  b.version = static_cast<std::uint8_t>(rd.uint(1));
  b.keepalive_ms = static_cast<std::uint32_t>(rd.uint(4));
  b.max_streams = static_cast<std::uint32_t>(rd.uint(4));
  b.identity = rd.str(rd.uint(2));
  b.info = rd.str(rd.uint(2));
  if (!rd.done() || b.version == 0 || !valid_text(b.identity) || !valid_text(b.info)) {
    return std::nullopt;
  }
  return b;
}

std::optional<open_body> decode_open(std::span<const std::byte> p) {
  reader rd(p);
  open_body b;
  b.window = static_cast<std::uint32_t>(rd.uint(4));
  auto proto = rd.uint(1);
  b.dest.port = static_cast<std::uint16_t>(rd.uint(2));
  b.dest.host = rd.str(rd.uint(1));
  b.peer = rd.str(rd.uint(1));
  auto env = rd.take(rd.uint(2));
  auto groups = rd.uint(1);
  for (std::uint64_t i = 0; i < groups && rd.ok(); ++i) {
    b.groups.push_back(rd.str(rd.uint(1)));
    if (!valid_group(b.groups.back())) return std::nullopt;
  }
  b.policy = rd.str(rd.uint(2));
  if (!rd.done() || proto > 2 || b.window == 0 || !valid_text(b.peer) || !valid_text(b.policy)) {
    return std::nullopt;
  }
  b.dest.protocol = static_cast<transport_protocol>(proto);
  b.envelope.assign(env.begin(), env.end());
  // An envelope hides the destination completely; without one it must be visible.
  if (b.envelope.empty() == (b.dest.protocol == transport_protocol::hidden)) {
    return std::nullopt;
  }
  if (!b.envelope.empty() && (!b.dest.host.empty() || b.dest.port != 0)) {
    return std::nullopt;
  }
  // Without an envelope the target must be complete and well-formed.
  if (b.envelope.empty() && (!valid_host(b.dest.host) || b.dest.port == 0)) {
    return std::nullopt;
  }
  if (!b.dest.host.empty() && !valid_host(b.dest.host)) {
    return std::nullopt;
  }
  return b;
}

std::optional<open_result_body> decode_open_result(std::span<const std::byte> p) {
  reader rd(p);
  open_result_body b;
  auto code = rd.uint(1);
  b.window = static_cast<std::uint32_t>(rd.uint(4));
  b.message = rd.str(rd.uint(2));
  auto env = rd.take(rd.uint(2));
  if (!rd.done() || !(code == 0 || valid_code(code)) || !valid_text(b.message)) {
    return std::nullopt;
  }
  b.envelope.assign(env.begin(), env.end());
  b.code = static_cast<errc>(code);
  if (b.code == errc::ok && b.window == 0) {
    return std::nullopt;
  }
  return b;
}

std::optional<std::uint32_t> decode_window(std::span<const std::byte> p) {
  reader rd(p);
  auto v = static_cast<std::uint32_t>(rd.uint(4));
  if (!rd.done() || v == 0) return std::nullopt;
  return v;
}

std::optional<reset_body> decode_reset(std::span<const std::byte> p) {
  reader rd(p);
  reset_body b;
  auto code = rd.uint(1);
  b.message = rd.str(rd.uint(2));
  if (!rd.done() || !valid_code(code) || !valid_text(b.message)) return std::nullopt;
  b.code = static_cast<errc>(code);
  return b;
}

std::optional<std::uint64_t> decode_ping(std::span<const std::byte> p) {
  reader rd(p);
  auto v = rd.uint(8);
  if (!rd.done()) return std::nullopt;
  return v;
}

std::optional<goaway_body> decode_goaway(std::span<const std::byte> p) {
  reader rd(p);
  goaway_body b;
  auto code = rd.uint(1);
  b.message = rd.str(rd.uint(2));
  if (!rd.done() || code > 5 || !valid_text(b.message)) return std::nullopt;
  b.code = static_cast<goaway_code>(code);
  return b;
}

void encode_header(const frame_header& h, std::span<std::byte, frame_header_size> out) noexcept {
  auto w = [&](std::size_t off, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      out[off + i] = static_cast<std::byte>((v >> (8 * (n - 1 - i))) & 0xff);
    }
  };
  w(0, static_cast<std::uint8_t>(h.type), 1);
  w(1, h.flags, 1);
  w(2, 0, 2);
  w(4, h.stream_id, 4);
  w(8, h.length, 4);
}

std::array<std::byte, frame_header_size> data_header(std::uint32_t id, std::uint32_t length) {
  std::array<std::byte, frame_header_size> h{};
  encode_header({frame_type::data, 0, id, length}, h);
  return h;
}

void append_hello(std::vector<std::byte>& out, const hello_body& b) {
  append_frame(out, frame_type::hello, 0, [&] {
    put(out, b.version, 1);
    put(out, b.keepalive_ms, 4);
    put(out, b.max_streams, 4);
    put_str(out, b.identity.substr(0, 0xffff), 2);
    put_str(out, b.info.substr(0, 0xffff), 2);
  });
}

void append_open(std::vector<std::byte>& out, std::uint32_t id, const open_body& b) {
  append_frame(out, frame_type::open, id, [&] {
    put(out, b.window, 4);
    put(out, static_cast<std::uint8_t>(b.dest.protocol), 1);
    put(out, b.dest.port, 2);
    put_str(out, std::string_view(b.dest.host).substr(0, 255), 1);
    put_str(out, std::string_view(b.peer).substr(0, 255), 1);
    auto env = std::min<std::size_t>(b.envelope.size(), 0xffff);
    put(out, env, 2);
    out.insert(out.end(), b.envelope.begin(), b.envelope.begin() + static_cast<std::ptrdiff_t>(env));
    auto groups = std::min<std::size_t>(b.groups.size(), 255);
    put(out, groups, 1);
    for (std::size_t i = 0; i < groups; ++i) {
      put_str(out, std::string_view(b.groups[i]).substr(0, 255), 1);
    }
    put_str(out, std::string_view(b.policy).substr(0, 0xffff), 2);
  });
}

void append_open_result(std::vector<std::byte>& out, std::uint32_t id, const open_result_body& b) {
  append_frame(out, frame_type::open_result, id, [&] {
    put(out, static_cast<std::uint8_t>(b.code), 1);
    put(out, b.window, 4);
    put_str(out, std::string_view(b.message).substr(0, 1024), 2);
    auto env = std::min<std::size_t>(b.envelope.size(), 0xffff);
    put(out, env, 2);
    out.insert(out.end(), b.envelope.begin(), b.envelope.begin() + static_cast<std::ptrdiff_t>(env));
  });
}

void append_window(std::vector<std::byte>& out, std::uint32_t id, std::uint32_t increment) {
  append_frame(out, frame_type::window, id, [&] { put(out, increment, 4); });
}

void append_fin(std::vector<std::byte>& out, std::uint32_t id) {
  append_frame(out, frame_type::fin, id, [] {});
}

void append_reset(std::vector<std::byte>& out, std::uint32_t id, const reset_body& b) {
  append_frame(out, frame_type::reset, id, [&] {
    put(out, static_cast<std::uint8_t>(b.code), 1);
    put_str(out, std::string_view(b.message).substr(0, 1024), 2);
  });
}

void append_ping(std::vector<std::byte>& out, frame_type t, std::uint64_t value) {
  append_frame(out, t, 0, [&] { put(out, value, 8); });
}

void append_goaway(std::vector<std::byte>& out, const goaway_body& b) {
  append_frame(out, frame_type::goaway, 0, [&] {
    put(out, static_cast<std::uint8_t>(b.code), 1);
    put_str(out, std::string_view(b.message).substr(0, 1024), 2);
  });
}

std::vector<std::byte> encode_e2e_request(const target& t) {
  std::vector<std::byte> out;
  put(out, 1, 1);
  put(out, static_cast<std::uint8_t>(t.protocol), 1);
  put(out, t.port, 2);
  put_str(out, std::string_view(t.host).substr(0, 255), 1);
  return out;
}

std::optional<target> decode_e2e_request(std::span<const std::byte> p) {
  reader rd(p);
  target t;
  auto version = rd.uint(1);
  auto proto = rd.uint(1);
  t.port = static_cast<std::uint16_t>(rd.uint(2));
  t.host = rd.str(rd.uint(1));
  if (!rd.done() || version != 1 || (proto != 1 && proto != 2) || t.port == 0 || !valid_host(t.host)) {
    return std::nullopt;
  }
  t.protocol = static_cast<transport_protocol>(proto);
  return t;
}

std::vector<std::byte> encode_e2e_verdict(const e2e_verdict& v) {
  std::vector<std::byte> out;
  put(out, static_cast<std::uint8_t>(v.code), 1);
  put_str(out, std::string_view(v.message).substr(0, 512), 2);
  return out;
}

std::optional<e2e_verdict> decode_e2e_verdict(std::span<const std::byte> p) {
  reader rd(p);
  e2e_verdict v;
  auto code = rd.uint(1);
  v.message = rd.str(rd.uint(2));
  if (!rd.done() || !(code == 0 || valid_code(code)) || !valid_text(v.message)) {
    return std::nullopt;
  }
  v.code = static_cast<errc>(code);
  return v;
}

}  // namespace nl::proto
