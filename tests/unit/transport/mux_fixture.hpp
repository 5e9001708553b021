// Helpers shared by the multiplexer tests (mux_test.cpp, mux_flow_test.cpp,
// mux_close_test.cpp) on top of harness.hpp: a pair with one stream already accepted,
// and the session checks the tests repeat.
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
    auto body = [this]() -> awaitable<void> { sp = co_await connect_stream(*p.a, *p.b); };
    REQUIRE(run_test(io, body));
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
  }
};

}  // namespace nl::test
