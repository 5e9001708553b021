// Test harness for transport tests: a mux session pair over the memory channel, bounded
// drivers for the io_context (run a coroutine to completion, run until a condition, run
// until nothing more can happen), and helpers to look at the frames on the wire.
// Nothing here sleeps to synchronise: every wait is on a condition with a deadline.
// Thread-safety: none; one io_context thread.
#pragma once

#include <utility>  // before Asio's awaitable header: g++ 12 needs it

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "common/async.hpp"
#include "proto/frame.hpp"
#include "transport/mux/mux_session.hpp"
#include "transport/session.hpp"

#include "memory_channel.hpp"

namespace nl::test {

using namespace std::chrono_literals;
using transport::mux_options;
using transport::session;

// A connected pair: `a` dialed (initiator, odd stream ids, waits for HELLO), `b` accepted
// (sends HELLO first), like agent/client and gateway.
struct session_pair {
  std::shared_ptr<memory_link> link;  // end 0 = a, end 1 = b
  std::shared_ptr<session> a;
  std::shared_ptr<session> b;
};

inline proto::hello_body test_hello() {
  proto::hello_body h;
  h.keepalive_ms = 10'000;
  h.max_streams = 4096;
  h.identity = "acme/home";
  h.info = "unit test";
  return h;
}

// Options of a session that takes early data (WebSocket sub-protocol nl.2).
inline mux_options early() {
  mux_options o;
  o.early_data = true;
  return o;
}

inline session_pair make_session_pair(asio::io_context& io, mux_options a_opts = {}, mux_options b_opts = {}) {
  auto ch = make_channel_pair(io);
  a_opts.initiator = true;
  a_opts.hello.reset();
  if (a_opts.log_name.empty()) {
    a_opts.log_name = "test a";
  }
  b_opts.initiator = false;
  if (!b_opts.hello) {
    b_opts.hello = test_hello();
  }
  if (b_opts.log_name.empty()) {
    b_opts.log_name = "test b";
  }
  session_pair p;
  p.link = ch.link;
  p.a = transport::make_mux_session(std::move(ch.a), std::move(a_opts));
  p.b = transport::make_mux_session(std::move(ch.b), std::move(b_opts));
  return p;
}

// Runs handlers until pred() holds or `limit` passes. True if it held.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 2000ms) {
  io.restart();
  auto deadline = clock::now() + limit;
  while (!pred()) {
    if (clock::now() >= deadline) {
      return false;
    }
    if (io.run_one_until(deadline) == 0 && io.stopped()) {
      return pred();  // no work left: nothing will change any more
    }
  }
  return true;
}

// Runs every handler that is ready, and those they make ready, until none is: everything that
// can happen without a timer expiring has happened. Deterministic; never waits for time.
inline void settle(asio::io_context& io) {
  io.restart();
  for (int i = 0; i < 1'000'000 && io.poll() > 0; ++i) {
  }
}

// A coroutine started on the io_context whose completion the test can observe.
template <class T>
struct task_state {
  bool done = false;
  std::optional<T> value;
  std::exception_ptr error;
};

template <class T>
std::shared_ptr<task_state<T>> start(asio::io_context& io, awaitable<T> a) {
  auto st = std::make_shared<task_state<T>>();
  asio::co_spawn(io, std::move(a), [st](std::exception_ptr e, T v) {
    st->done = true;
    st->error = e;
    if (!e) {
      st->value.emplace(std::move(v));
    }
  });
  return st;
}

inline std::shared_ptr<task_state<bool>> start(asio::io_context& io, awaitable<void> a) {
  auto st = std::make_shared<task_state<bool>>();
  asio::co_spawn(io, std::move(a), [st](std::exception_ptr e) {
    st->done = true;
    st->error = e;
    st->value.emplace(!e);
  });
  return st;
}

// Runs the coroutine made by `body()` until it returns (true) or `limit` passes (false).
// Its exceptions (including Catch's REQUIRE failures) are rethrown here.
template <class F>
bool run_test(asio::io_context& io, F&& body, std::chrono::milliseconds limit = 3000ms) {
  auto st = start(io, body());
  bool finished = run_until(io, [&] { return st->done; }, limit);
  if (st->error) {
    std::rethrow_exception(st->error);
  }
  return finished;
}

// ---- bytes ----

inline std::string to_string(const bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline bytes make_bytes(std::string_view s) { return bytes::copy_of(s.data(), s.size()); }

// Deterministic, stream-specific content: byte i of stream `seed` is a hash of (seed, i).
inline std::uint8_t pattern_byte(std::uint32_t seed, std::uint64_t i) {
  std::uint64_t x = (std::uint64_t{seed} << 32) ^ i;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<std::uint8_t>(x);
}

inline bytes pattern(std::uint32_t seed, std::uint64_t offset, std::size_t n) {
  bytes b(n);
  auto* p = static_cast<std::uint8_t*>(b.prepare().data());
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = pattern_byte(seed, offset + i);
  }
  b.commit(n);
  return b;
}

// Reads until EOF or error; checks each byte against pattern(seed) as it arrives.
// Writes pattern(seed) in pieces of `piece` bytes up to `total`, then optionally FIN.
inline awaitable<error_code> write_pattern(transport::stream& s, std::uint32_t seed, std::size_t total, std::size_t piece,
                                    bool fin = true) {
  std::size_t off = 0;
  while (off < total) {
    auto n = std::min(piece, total - off);
    if (auto ec = co_await s.write(pattern(seed, off, n)); ec) {
      co_return ec;
    }
    off += n;
  }
  if (fin) {
    co_await s.shutdown_send();
  }
  co_return error_code{};
}

// A stream read to its end as text: `eof` when it ended cleanly, else the read error.
struct text_result {
  std::string text;
  bool eof = false;
  error_code error;
};

// How a stream read to its end ended: `eof` when cleanly, else the read error.
struct stream_end {
  bool eof = false;
  error_code error;
};

// Reads until EOF or error, handing each chunk to `on_chunk` (which outlives the call).
template <class F>
awaitable<stream_end> read_chunks(transport::stream& s, F& on_chunk) {
  stream_end e;
  for (;;) {
    auto chunk = co_await s.read();
    if (!chunk) {
      e.error = chunk.error();
      co_return e;
    }
    if (chunk->empty()) {
      e.eof = true;
      co_return e;
    }
    on_chunk(*chunk);
  }
}

inline awaitable<text_result> read_text_full(transport::stream& s) {
  text_result r;
  auto add = [&r](const bytes& b) { r.text += to_string(b); };
  auto end = co_await read_chunks(s, add);
  r.eof = end.eof;
  r.error = end.error;
  co_return r;
}

// Everything until EOF as text; a reset leaves its code in `err` (and the text so far).
inline awaitable<std::string> read_stream_to_eof(transport::stream& s, error_code& err) {
  auto r = co_await read_text_full(s);
  err = r.error;
  co_return std::move(r.text);
}

struct read_all_result {
  std::uint64_t total = 0;
  std::uint64_t chunks = 0;
  bool eof = false;
  bool intact = true;
  error_code error;
};

inline awaitable<read_all_result> read_all(transport::stream& s, std::optional<std::uint32_t> seed = {}) {
  read_all_result r;
  auto check = [&r, &seed](const bytes& b) {
    if (seed) {
      auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
      for (std::size_t i = 0; i < b.size(); ++i) {
        if (p[i] != pattern_byte(*seed, r.total + i)) {
          r.intact = false;
        }
      }
    }
    r.total += b.size();
    ++r.chunks;
  };
  auto end = co_await read_chunks(s, check);
  r.eof = end.eof;
  r.error = end.error;
  co_return r;
}

// Reads until EOF/error and returns the text.
inline awaitable<std::string> read_text(transport::stream& s) {
  auto r = co_await read_text_full(s);
  co_return std::move(r.text);
}

// ---- frames on the wire ----

struct wire_frame {
  proto::frame_header header;
  std::vector<std::byte> payload;
};

// Splits one channel message into frames; stops at the first malformed one.
inline std::vector<wire_frame> frames_of(std::span<const std::byte> msg) {
  std::vector<wire_frame> out;
  while (!msg.empty()) {
    auto r = proto::parse_frame(msg);
    if (r.status != proto::parse_status::ok) {
      break;
    }
    out.push_back({r.frame.header, {r.frame.payload.begin(), r.frame.payload.end()}});
    msg = msg.subspan(r.frame.consumed);
  }
  return out;
}

// Records every frame written in one direction (installs a tap).
struct frame_log {
  std::vector<wire_frame> frames;
  std::size_t count(proto::frame_type t, std::optional<std::uint32_t> id = {}) const {
    std::size_t n = 0;
    for (const auto& f : frames) {
      if (f.header.type == t && (!id || f.header.stream_id == *id)) {
        ++n;
      }
    }
    return n;
  }
  std::uint64_t data_bytes(std::uint32_t id) const {
    std::uint64_t n = 0;
    for (const auto& f : frames) {
      if (f.header.type == proto::frame_type::data && f.header.stream_id == id) {
        n += f.payload.size();
      }
    }
    return n;
  }
};

inline std::shared_ptr<frame_log> record_frames(direction& d) {
  auto log = std::make_shared<frame_log>();
  d.tap = [log](std::span<const std::byte> msg) {
    for (auto& f : frames_of(msg)) {
      log->frames.push_back(std::move(f));
    }
  };
  return log;
}

inline std::vector<std::byte> raw_frame(proto::frame_type t, std::uint32_t id, std::span<const std::byte> payload,
                                        std::uint8_t flags = 0) {
  std::vector<std::byte> out(proto::frame_header_size);
  proto::encode_header({t, flags, id, static_cast<std::uint32_t>(payload.size())},
                       std::span<std::byte, proto::frame_header_size>(out.data(), proto::frame_header_size));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline std::vector<std::byte> raw_data(std::uint32_t id, std::size_t n) {
  std::vector<std::byte> payload(n, std::byte{0x5a});
  return raw_frame(proto::frame_type::data, id, payload);
}

// A plain open request to host:port.
inline transport::open_request request_to(std::string host, std::uint16_t port, std::string peer = "home") {
  transport::open_request r;
  r.dest = {std::move(host), port, proto::transport_protocol::tcp};
  r.peer = std::move(peer);
  return r;
}

// One stream opened on one session and accepted on the other, with the request as the
// acceptor saw it.
struct stream_pair {
  std::unique_ptr<transport::stream> opener;
  std::unique_ptr<transport::stream> acceptor;
  transport::open_request seen;
};

inline awaitable<void> open_into(session& s, transport::open_request req, transport::open_outcome& out,
                                 std::chrono::milliseconds t = 2000ms) {
  out = co_await s.open(std::move(req), t);
}

inline awaitable<void> accept_into(session& s, stream_pair& sp) {
  auto in = co_await s.accept();
  if (in) {
    sp.seen = (*in)->request();
    sp.acceptor = (*in)->accept();
  }
}

// Opens a stream on `opener` and accepts it on `acceptor`.
inline awaitable<stream_pair> connect_stream(session& opener, session& acceptor,
                                             transport::open_request req = request_to("example.com", 80)) {
  stream_pair sp;
  transport::open_outcome out;
  co_await when_both(open_into(opener, std::move(req), out), accept_into(acceptor, sp));
  sp.opener = std::move(out.stream);
  co_return sp;
}

// Reads exactly `n` bytes (several chunks), stopping early on EOF or an error.
inline awaitable<std::uint64_t> read_exactly(transport::stream& s, std::uint64_t n) {
  std::uint64_t got = 0;
  while (got < n) {
    auto chunk = co_await s.read();
    if (!chunk || chunk->empty()) {
      break;
    }
    got += chunk->size();
  }
  co_return got;
}

}  // namespace nl::test
