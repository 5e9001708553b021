// The frame multiplexer's end of life and limits: close() and drain() with GOAWAY,
// open timeouts, max_streams, message size and stream accounting over many cycles.
// Every wait is bounded; "nothing more happens" is checked with settle(), never a sleep.
#include "mux_fixture.hpp"

using namespace nl;
using namespace nl::test;

// ---------------------------------------------------------------------------------------
// GOAWAY, close and drain
// ---------------------------------------------------------------------------------------

TEST_CASE("close() tells the peer why; every stream fails with session_closed", "[mux][goaway]") {
  asio::io_context io;
  connected c(io);
  auto& p = c.p;
  auto pending_read = start(io, c.sp.acceptor->read());
  auto pending_accept = start(io, p.b->accept());
  settle(io);
  p.a->close(goaway_code::replaced, "replaced by a newer session from 10.0.0.7");
  CHECK_FALSE(p.a->is_open());
  CHECK(p.a->is_draining());
  auto a_closed = start(io, p.a->wait_closed());
  auto b_closed = start(io, p.b->wait_closed());
  REQUIRE(run_until(io, [&] { return a_closed->done && b_closed->done; }, 1s));
  CHECK_FALSE(p.b->is_open());
  CHECK(p.b->closed_by().remote);
  CHECK(p.b->closed_by().code == goaway_code::replaced);
  CHECK(p.b->closed_by().message == "replaced by a newer session from 10.0.0.7");
  CHECK_FALSE(p.a->closed_by().remote);
  CHECK(p.a->closed_by().code == goaway_code::replaced);
  CHECK(p.a->closed_by().message == "replaced by a newer session from 10.0.0.7");

  REQUIRE(pending_read->done);
  REQUIRE_FALSE(pending_read->value->has_value());
  CHECK(pending_read->value->error() == make_error_code(errc::session_closed));
  REQUIRE(pending_accept->done);
  REQUIRE_FALSE(pending_accept->value->has_value());
  CHECK(pending_accept->value->error() == make_error_code(errc::session_closed));
  CHECK(no_streams(p));

  auto body = [&]() -> awaitable<void> {
    auto ec = co_await c.sp.opener->write(make_bytes("x"));
    CHECK(ec == make_error_code(errc::session_closed));
    auto out = co_await p.a->open(request_to("example.com", 80), 1s);
    CHECK_FALSE(out.stream);
    CHECK(out.error == make_error_code(errc::not_connected));
    auto acc = co_await p.a->accept();
    CHECK_FALSE(acc);
  };
  REQUIRE(run_test(io, body));
  p.a->close(goaway_code::normal, "again");  // idempotent: the first reason stays
  CHECK(p.a->closed_by().code == goaway_code::replaced);
}

TEST_CASE("close() returns even when the peer stopped reading", "[mux][goaway]") {
  asio::io_context io;
  connected c(io);
  c.p.link->set_stalled(0, true);
  auto writer = start(io, write_pattern(*c.sp.opener, 1, 256 * 1024, 64 * 1024));
  settle(io);
  c.p.a->close(goaway_code::normal, "bye");
  auto closed = start(io, c.p.a->wait_closed());
  REQUIRE(run_until(io, [&] { return closed->done; }, 3s));  // bounded by the 2 s grace period
  CHECK(run_until(io, [&] { return writer->done; }, 500ms));
  CHECK(run_until(io, [&] { return !c.p.b->is_open(); }, 500ms));
}

TEST_CASE("drain(): new opens fail, existing streams finish, then the session closes", "[mux][goaway]") {
  asio::io_context io;
  connected c(io);
  auto& p = c.p;
  constexpr std::size_t response = 200 * 1024;
  p.b->drain(goaway_code::normal, "maintenance");
  CHECK(p.b->is_draining());
  CHECK(p.b->is_open());
  REQUIRE(run_until(io, [&] { return p.a->is_draining(); }, 500ms));
  CHECK(p.a->is_open());

  auto refused = [&]() -> awaitable<void> {
    auto out = co_await p.a->open(request_to("example.com", 80), 500ms);
    CHECK_FALSE(out.stream);
    CHECK(out.error == make_error_code(errc::not_connected));
    auto out2 = co_await p.b->open(request_to("example.com", 80), 500ms);
    CHECK_FALSE(out2.stream);
    CHECK(out2.error == make_error_code(errc::not_connected));
  };
  REQUIRE(run_test(io, refused));

  SECTION("the draining side sends the last data and FIN (request, then response)") {
    auto b_log = record_frames(p.link->from(1));
    text_result request;
    read_all_result reply;
    auto body = [&]() -> awaitable<void> {
      co_await c.sp.opener->write(make_bytes("request"));
      co_await c.sp.opener->shutdown_send();
      request = co_await read_text_full(*c.sp.acceptor);
      co_await write_pattern(*c.sp.acceptor, 9, response, 64 * 1024, true);
      reply = co_await read_all(*c.sp.opener, 9);
    };
    REQUIRE(run_test(io, body));
    INFO("b -> a on the wire: " << b_log->data_bytes(c.sp.acceptor->id()) << " data bytes, "
                                << b_log->count(frame_type::fin) << " FIN, "
                                << b_log->count(frame_type::goaway) << " GOAWAY");
    CHECK(request.text == "request");
    CHECK(request.eof);
    CHECK(reply.total == response);
    CHECK(reply.intact);
    CHECK(reply.eof);
    CHECK_FALSE(reply.error);
  }
  SECTION("the side that received GOAWAY sends the last data and FIN (banner, then reply)") {
    read_all_result banner;
    text_result answer;
    auto body = [&]() -> awaitable<void> {
      co_await write_pattern(*c.sp.acceptor, 9, response, 64 * 1024, true);
      banner = co_await read_all(*c.sp.opener, 9);
      co_await c.sp.opener->write(make_bytes("last words"));
      co_await c.sp.opener->shutdown_send();
      answer = co_await read_text_full(*c.sp.acceptor);
    };
    REQUIRE(run_test(io, body));
    CHECK(banner.total == response);
    CHECK(banner.eof);
    CHECK(answer.text == "last words");
    CHECK(answer.eof);
    CHECK_FALSE(answer.error);
  }
  // ...and then both sessions end by themselves.
  REQUIRE(run_until(io, [&] { return both_closed(p); }, 1s));
  CHECK(p.a->closed_by().remote);
  CHECK(p.a->closed_by().code == goaway_code::normal);
  CHECK(p.a->closed_by().message == "maintenance");
}

TEST_CASE("drain(): an OPEN that crossed the GOAWAY is refused", "[mux][goaway]") {
  asio::io_context io;
  connected c(io);  // an open stream keeps the draining session up
  auto& p = c.p;
  // Hold b's GOAWAY back so that a still believes the session is open.
  p.link->from(1).filter = [](std::span<const std::byte>) { return verdict::hold; };
  p.b->drain(goaway_code::overloaded, "shedding load");
  auto opened = start(io, p.a->open(request_to("example.com", 80), 1s));
  settle(io);
  CHECK(p.b->is_open());
  p.link->from(1).filter = nullptr;
  p.link->release_held(1);
  REQUIRE(run_until(io, [&] { return opened->done; }, 1s));
  CHECK_FALSE(opened->value->stream);
  CHECK(opened->value->error == make_error_code(errc::aborted));
  CHECK(p.a->is_draining());
  c.sp.opener->reset(errc::aborted, "done");
  REQUIRE(run_until(io, [&] { return both_closed(p); }, 1s));
  CHECK(p.a->closed_by().remote);
  CHECK(p.a->closed_by().code == goaway_code::overloaded);
  CHECK(p.a->closed_by().message == "shedding load");
}

// ---------------------------------------------------------------------------------------
// Resources and timeouts
// ---------------------------------------------------------------------------------------

TEST_CASE("stream_count returns to 0 after 2000 open/close cycles", "[mux][resources]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  int cycles = 0;
  std::size_t max_seen = 0;
  auto body = [&]() -> awaitable<void> {
    for (int i = 0; i < 2000; ++i) {
      if (i % 5 == 4) {  // every fifth is rejected
        open_outcome out;
        auto reject = [&]() -> awaitable<void> {
          auto in = co_await p.b->accept();
          REQUIRE(in);
          (*in)->reject(errc::refused, "no");
        };
        co_await when_both(open_into(*p.a, request_to("example.com", 80), out, 1s), reject());
        REQUIRE(out.error == make_error_code(errc::refused));
      } else {
        auto sp = co_await connect_stream(*p.a, *p.b);
        REQUIRE(sp.opener);
        max_seen = std::max(max_seen, p.a->stream_count());
        if (i % 3 == 0) {  // reset by the opener
          sp.opener->reset(errc::aborted, "cycle");
          auto r = co_await sp.acceptor->read();
          REQUIRE_FALSE(r);
        } else if (i % 3 == 1) {  // orderly close, with a little data
          co_await sp.opener->write(make_bytes("ping"));
          co_await sp.opener->shutdown_send();
          auto got = co_await read_text_full(*sp.acceptor);
          REQUIRE(got.eof);
          co_await sp.acceptor->shutdown_send();
          auto back = co_await read_text_full(*sp.opener);
          REQUIRE(back.eof);
        }
        // else: both handles are simply dropped (RESET aborted)
      }
      ++cycles;
    }
  };
  REQUIRE(run_test(io, body, 10s));
  CHECK(cycles == 2000);
  CHECK(max_seen <= 2);
  CHECK(run_until(io, [&] { return no_streams(p); }, 1s));
  CHECK(p.a->stream_count() == 0);
  CHECK(p.b->stream_count() == 0);
  CHECK(p.a->is_open());
}

TEST_CASE("open() times out with errc::timeout when the peer never answers", "[mux][timeout]") {
  asio::io_context io;
  auto p = make_session_pair(io);  // nobody calls p.b->accept()
  auto t0 = steady::now();
  auto opened = start(io, p.a->open(request_to("example.com", 80), 100ms));
  REQUIRE(run_until(io, [&] { return opened->done; }, 1s));
  auto took = steady::now() - t0;
  CHECK(took >= 100ms);
  CHECK(took < 600ms);
  CHECK_FALSE(opened->value->stream);
  CHECK(opened->value->error == make_error_code(errc::timeout));
  CHECK(p.a->stream_count() == 0);
  // The RESET reaches the acceptor, which forgets the unanswered stream.
  CHECK(run_until(io, [&] { return p.b->stream_count() == 0; }, 500ms));
  CHECK(p.a->is_open());
}

TEST_CASE("an OPEN_RESULT arriving after the timeout is ignored", "[mux][timeout]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto hello = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*p.a, 1s);
    REQUIRE(h);
  };
  REQUIRE(run_test(io, hello));
  p.link->from(1).filter = [](std::span<const std::byte>) { return verdict::hold; };
  auto opened = start(io, p.a->open(request_to("example.com", 80), 100ms));
  auto accepted = start(io, p.b->accept());
  REQUIRE(run_until(io, [&] { return accepted->done; }, 500ms));
  auto s = (**accepted->value)->accept();  // the answer is held back
  REQUIRE(run_until(io, [&] { return opened->done; }, 1s));
  CHECK(opened->value->error == make_error_code(errc::timeout));
  p.link->from(1).filter = nullptr;
  p.link->release_held(1);
  auto r = start(io, s->read());
  REQUIRE(run_until(io, [&] { return r->done; }, 500ms));
  REQUIRE_FALSE(r->value->has_value());
  CHECK(r->value->error() == make_error_code(errc::timeout));  // a's RESET(timeout)
  settle(io);
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
  CHECK(no_streams(p));
}

TEST_CASE("max_streams: the acceptor refuses streams beyond its limit", "[mux][resources]") {
  asio::io_context io;
  mux_options bo;
  bo.max_streams = 2;
  auto p = make_session_pair(io, {}, bo);
  std::vector<std::unique_ptr<incoming_stream>> held;
  auto keep = [&]() -> awaitable<void> {
    for (;;) {
      auto in = co_await p.b->accept();
      if (!in) {
        co_return;
      }
      held.push_back(std::move(*in));
    }
  };
  auto acceptor = start(io, keep());
  auto o1 = start(io, p.a->open(request_to("h", 1), 300ms));
  auto o2 = start(io, p.a->open(request_to("h", 2), 300ms));
  auto o3 = start(io, p.a->open(request_to("h", 3), 300ms));
  REQUIRE(run_until(io, [&] { return o3->done; }, 1s));
  CHECK(o3->value->error == make_error_code(errc::limit));
  CHECK(held.size() == 2);
  std::vector<std::unique_ptr<stream>> streams;
  for (auto& h : held) {
    streams.push_back(h->accept());
  }
  REQUIRE(run_until(io, [&] { return o1->done && o2->done; }, 1s));
  CHECK_FALSE(o1->value->error);
  CHECK_FALSE(o2->value->error);
}

TEST_CASE("a WINDOW that overflows the send credit is a protocol error", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  std::vector<std::byte> w;
  proto::append_window(w, c.sp.opener->id(), 0xffffffffu);
  c.p.link->inject(0, w);
  REQUIRE(run_until(io, [&] { return !c.p.a->is_open(); }, 1s));
  CHECK(c.p.a->closed_by().code == goaway_code::protocol);
}

TEST_CASE("a write suspended on flow control is woken by a reset or a session close", "[mux][flow]") {
  asio::io_context io;
  mux_options bo;
  bo.window = 64 * 1024;
  connected c(io, {}, bo);
  auto writer = start(io, c.sp.opener->write(pattern(1, 0, 256 * 1024)));
  settle(io);
  REQUIRE_FALSE(writer->done);
  SECTION("the peer resets the stream") {
    c.sp.acceptor->reset(errc::host_unreachable, "no route");
    REQUIRE(run_until(io, [&] { return writer->done; }, 500ms));
    CHECK(*writer->value == make_error_code(errc::host_unreachable));
    CHECK(c.sp.opener->error_message() == "no route");
  }
  SECTION("we reset it ourselves") {
    c.sp.opener->reset(errc::aborted, "user quit");
    REQUIRE(run_until(io, [&] { return writer->done; }, 500ms));
    CHECK(*writer->value == make_error_code(errc::aborted));
  }
  SECTION("the peer closes the session") {
    c.p.b->close(goaway_code::normal, "bye");
    REQUIRE(run_until(io, [&] { return writer->done; }, 500ms));
    CHECK(*writer->value == make_error_code(errc::session_closed));
  }
}

TEST_CASE("the writer never builds a message larger than the WebSocket limit", "[mux][resources]") {
  // ws_channel.hpp: read_message_max(1 MiB), "one message holds at most the mux writer's batch
  // (512 KiB) plus headers". A peer that receives a bigger message fails the connection.
  constexpr std::size_t ws_limit = 1024 * 1024;
  asio::io_context io;
  auto p = make_session_pair(io);
  auto hello = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*p.a, 1s);
    REQUIRE(h);
  };
  REQUIRE(run_test(io, hello));
  std::size_t largest = 0;
  p.link->from(0).tap = [&](std::span<const std::byte> m) { largest = std::max(largest, m.size()); };
  // A burst of opens with e2e envelopes (4 KiB each; OPEN payloads may be up to 8 KiB),
  // all issued before the writer gets to run, as under a SOCKS connection burst.
  constexpr int n = 300;
  std::vector<std::shared_ptr<task_state<open_outcome>>> opens;
  for (int i = 0; i < n; ++i) {
    open_request r;
    r.peer = "home";
    r.dest.protocol = proto::transport_protocol::hidden;
    auto e = pattern(static_cast<std::uint32_t>(i), 0, 4096);
    r.envelope.assign(e.data(), e.data() + e.size());
    opens.push_back(start(io, p.a->open(std::move(r), 1s)));
  }
  std::vector<std::unique_ptr<stream>> accepted;
  auto accept_all = [&]() -> awaitable<void> {
    while (accepted.size() < n) {
      auto in = co_await p.b->accept();
      if (!in) {
        co_return;
      }
      accepted.push_back((*in)->accept());
    }
  };
  auto acceptor = start(io, accept_all());
  REQUIRE(run_until(io, [&] {
    return std::all_of(opens.begin(), opens.end(), [](auto& o) { return o->done; }) || !p.b->is_open();
  }, 2s));
  INFO("largest message a -> b: " << largest << " bytes");
  CHECK(largest <= ws_limit);
  CHECK(accepted.size() == n);
}

TEST_CASE("a broken channel (lost or duplicated messages) is never silently accepted", "[mux][hostile]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto hello = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*p.a, 1s);
    REQUIRE(h);
  };
  REQUIRE(run_test(io, hello));
  SECTION("a duplicated OPEN is a protocol error") {
    p.link->from(0).filter = [](std::span<const std::byte>) { return verdict::duplicate; };
    auto opened = start(io, p.a->open(request_to("example.com", 80), 500ms));
    REQUIRE(run_until(io, [&] { return !p.b->is_open(); }, 1s));
    CHECK(p.b->closed_by().code == goaway_code::protocol);
    REQUIRE(run_until(io, [&] { return opened->done; }, 1s));
    CHECK_FALSE(opened->value->stream);
  }
  SECTION("a lost OPEN ends in the open() timeout, the session survives") {
    p.link->from(0).filter = [](std::span<const std::byte>) { return verdict::drop; };
    auto opened = start(io, p.a->open(request_to("example.com", 80), 100ms));
    REQUIRE(run_until(io, [&] { return opened->done; }, 1s));
    CHECK(opened->value->error == make_error_code(errc::timeout));
    CHECK(p.a->is_open());
    CHECK(p.a->stream_count() == 0);
  }
}

TEST_CASE("a slow link delays but does not reorder", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  p.link->from(0).delay = 15ms;
  p.link->from(1).delay = 15ms;
  auto t0 = steady::now();
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.a, *p.b);
    REQUIRE(sp.opener);
    auto writer = [&]() -> awaitable<void> {
      for (int i = 0; i < 20; ++i) {
        co_await sp.opener->write(make_bytes(std::to_string(i) + ","));
      }
      co_await sp.opener->shutdown_send();
    };
    text_result got;
    auto reader = [&]() -> awaitable<void> { got = co_await read_text_full(*sp.acceptor); };
    co_await when_both(writer(), reader());
    CHECK(got.text == "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,");
    CHECK(got.eof);
  };
  REQUIRE(run_test(io, body));
  CHECK(steady::now() - t0 >= 30ms);  // at least the OPEN / OPEN_RESULT round trip
}
