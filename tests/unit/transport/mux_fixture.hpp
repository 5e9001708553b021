// Helpers shared by the multiplexer tests (mux_test.cpp, mux_flow_test.cpp,
// mux_close_test.cpp): a session pair over the in-memory channel, streams opened and
// accepted on it, and reads that stop at EOF or an error.
#pragma once

#include "transport/mux/mux_session.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <boost/asio/detached.hpp>

#include "harness.hpp"

namespace nl::test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using proto::frame_type;
using proto::goaway_code;
using transport::incoming_stream;
using transport::open_outcome;
using transport::open_request;
using transport::stream;

struct stream_pair {
  std::unique_ptr<stream> opener;
  std::unique_ptr<stream> acceptor;
  open_request seen;  // the request as the acceptor received it
};

inline awaitable<void> open_into(session& s, open_request req, open_outcome& out, std::chrono::milliseconds t) {
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
inline awaitable<stream_pair> connect(session& opener, session& acceptor,
                               open_request req = request_to("example.com", 80)) {
  stream_pair sp;
  open_outcome out;
  co_await when_both(open_into(opener, std::move(req), out, 1s), accept_into(acceptor, sp));
  sp.opener = std::move(out.stream);
  co_return sp;
}

struct text_result {
  std::string text;
  bool eof = false;
  error_code error;
};

inline awaitable<text_result> read_text_full(stream& s) {
  text_result r;
  for (;;) {
    auto chunk = co_await s.read();
    if (!chunk) {
      r.error = chunk.error();
      co_return r;
    }
    if (chunk->empty()) {
      r.eof = true;
      co_return r;
    }
    r.text += to_string(*chunk);
  }
}

// Reads exactly `n` bytes (several chunks), stopping early on EOF or error.
inline awaitable<std::uint64_t> read_exactly(stream& s, std::uint64_t n) {
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

template <class T>
inline void rethrow_if_failed(const std::shared_ptr<task_state<T>>& t) {
  if (t->error) {
    std::rethrow_exception(t->error);
  }
}

inline bool both_closed(const session_pair& p) { return !p.a->is_open() && !p.b->is_open(); }
inline bool no_streams(const session_pair& p) { return p.a->stream_count() == 0 && p.b->stream_count() == 0; }

// A session pair with one accepted stream (a -> b), built before the test proper starts.
struct connected {
  asio::io_context& io;
  session_pair p;
  stream_pair sp;
  connected(asio::io_context& i, mux_options ao = {}, mux_options bo = {})
      : io(i), p(make_session_pair(i, std::move(ao), std::move(bo))) {
    auto body = [this]() -> awaitable<void> { sp = co_await connect(*p.a, *p.b); };
    REQUIRE(run_test(io, body));
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
  }
};

}  // namespace nl::test
