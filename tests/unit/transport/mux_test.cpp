// Behaviour of the frame multiplexer (transport/mux/) over an in-memory channel pair:
// session start, stream lifecycle, integrity under concurrency, half-close, reset and
// keepalive. Flow control and hostile input are in mux_flow_test.cpp, GOAWAY/drain,
// resources and timeouts in mux_close_test.cpp.
// Every wait is bounded; "nothing more happens" is checked with settle() (run every ready
// handler until none is), never with a sleep.
#include "mux_fixture.hpp"

using namespace nl;
using namespace nl::test;

// ---------------------------------------------------------------------------------------
// Session start
// ---------------------------------------------------------------------------------------

TEST_CASE("the initiator receives the acceptor's HELLO", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*p.a, 1s);
    REQUIRE(h);
    CHECK(h->identity == "acme/home");
    CHECK(h->info == "unit test");
    CHECK(h->version == proto::protocol_version);
  };
  REQUIRE(run_test(io, body));
  CHECK(p.a->identity() == "acme/home");
  CHECK(p.b->identity().empty());
  CHECK(p.a->transport_name() == "mem");
  CHECK(p.a->remote_address() == "mem:b");
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
  CHECK_FALSE(p.a->is_draining());
  CHECK_FALSE(p.b->is_draining());
}

TEST_CASE("wait_hello gives up when the acceptor never sends HELLO", "[mux]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  auto a = transport::make_mux_session(std::move(ch.a), {.initiator = true});
  auto b = transport::make_mux_session(std::move(ch.b), {.initiator = false});  // no hello set
  auto t0 = steady::now();
  auto body = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*a, 100ms);
    REQUIRE_FALSE(h);
    CHECK(h.error() == make_error_code(errc::session_closed));
  };
  REQUIRE(run_test(io, body, 1000ms));
  CHECK(steady::now() - t0 < 900ms);
  CHECK_FALSE(a->is_open());
  CHECK(a->closed_by().code == goaway_code::timeout);
  CHECK_FALSE(a->closed_by().remote);
}

// ---------------------------------------------------------------------------------------
// Stream lifecycle
// ---------------------------------------------------------------------------------------

TEST_CASE("open, accept and echo", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.a, *p.b);
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
    CHECK(sp.opener->id() % 2 == 1);  // the initiator's ids are odd
    CHECK(sp.acceptor->id() == sp.opener->id());
    CHECK(p.a->stream_count() == 1);
    CHECK(p.b->stream_count() == 1);

    auto ec = co_await sp.opener->write(make_bytes("hello, gateway"));
    CHECK_FALSE(ec);
    co_await sp.opener->shutdown_send();
    auto up = co_await read_text_full(*sp.acceptor);
    CHECK(up.text == "hello, gateway");
    CHECK(up.eof);
    CHECK_FALSE(up.error);

    ec = co_await sp.acceptor->write(make_bytes(up.text));
    CHECK_FALSE(ec);
    co_await sp.acceptor->shutdown_send();
    auto down = co_await read_text_full(*sp.opener);
    CHECK(down.text == "hello, gateway");
    CHECK(down.eof);

    // After EOF, read() keeps returning an empty chunk.
    auto again = co_await sp.opener->read();
    REQUIRE(again);
    CHECK(again->empty());
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(p); }, 500ms));
}

TEST_CASE("the acceptor side can open streams too (even ids)", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto first = co_await connect_stream(*p.b, *p.a, request_to("agent.lan", 22));
    auto second = co_await connect_stream(*p.b, *p.a, request_to("agent.lan", 23));
    REQUIRE(first.opener);
    REQUIRE(second.opener);
    CHECK(first.opener->id() % 2 == 0);
    CHECK(second.opener->id() > first.opener->id());
    CHECK(first.seen.dest.port == 22);
    CHECK(second.seen.dest.port == 23);
    co_await second.acceptor->write(make_bytes("x"));
    auto r = co_await second.opener->read();
    REQUIRE(r);
    CHECK(to_string(*r) == "x");
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("OPEN carries target, peer and envelope intact", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  open_request req;
  std::vector<std::byte> envelope;
  SECTION("udp to an IPv6 literal, with the gateway's groups and policy") {
    req.dest = {"2001:db8::1", 8443, proto::transport_protocol::udp};
    req.peer = "acme/laptop";
    req.groups = {"ops", "dev"};
    req.policy = R"({"default":"deny","rules":[]})";
  }
  SECTION("e2e: hidden target, the envelope carries it") {
    req.dest = {"", 0, proto::transport_protocol::hidden};
    req.peer = "client #42";
    auto e = pattern(8, 0, 1000);
    req.envelope.assign(e.data(), e.data() + e.size());
  }
  SECTION("plain name, no envelope, longest host") {
    req.dest = {std::string(255, 'h'), 65535, proto::transport_protocol::tcp};
    req.peer = "";
  }
  auto sent = req;
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.a, *p.b, req);
    REQUIRE(sp.opener);
    CHECK(sp.seen.dest.host == sent.dest.host);
    CHECK(sp.seen.dest.port == sent.dest.port);
    CHECK(sp.seen.dest.protocol == sent.dest.protocol);
    CHECK(sp.seen.peer == sent.peer);
    CHECK(sp.seen.envelope == sent.envelope);
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("a reject's code and message reach the opener's open_outcome", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    open_outcome out;
    auto reject = [&]() -> awaitable<void> {
      auto in = co_await p.b->accept();
      REQUIRE(in);
      (*in)->reject(errc::denied, "rule 3: deny cidr=10.0.0.0/8");
    };
    co_await when_both(open_into(*p.a, request_to("10.1.2.3", 22), out, 1s), reject());
    CHECK_FALSE(out.stream);
    CHECK(out.error == make_error_code(errc::denied));
    CHECK(out.message == "rule 3: deny cidr=10.0.0.0/8");
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(p); }, 500ms));
}

TEST_CASE("an incoming stream dropped unanswered is refused with errc::aborted", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    open_outcome out;
    auto drop = [&]() -> awaitable<void> {
      auto in = co_await p.b->accept();
      REQUIRE(in);
      in->reset();  // destroys the incoming_stream without answering
    };
    co_await when_both(open_into(*p.a, request_to("example.com", 443), out, 1s), drop());
    CHECK_FALSE(out.stream);
    CHECK(out.error == make_error_code(errc::aborted));
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(p); }, 500ms));
}

TEST_CASE("200 concurrent streams each carry distinct data intact", "[mux]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  constexpr std::uint32_t n = 200;
  auto size_of = [](std::uint32_t i) { return std::size_t{20'000} + i * 397; };  // 20 KB .. 99 KB
  struct outcome {
    bool opened = false;
    read_all_result up;    // what the acceptor read
    read_all_result down;  // what the opener read back
  };
  std::vector<outcome> results(n);
  std::uint32_t done_a = 0;
  std::uint32_t done_b = 0;

  // Acceptor: reads pattern(i) to EOF, answers pattern(i + 1000) of the same size.
  auto serve = [&](std::unique_ptr<incoming_stream> in) -> awaitable<void> {
    auto i = static_cast<std::uint32_t>(in->request().dest.port - 1);
    auto s = in->accept();
    results[i].up = co_await read_all(*s, i);
    co_await write_pattern(*s, i + 1000, size_of(i), 50'000);
    ++done_b;
  };
  auto accept_loop = [&]() -> awaitable<void> {
    for (std::uint32_t k = 0; k < n; ++k) {
      auto in = co_await p.b->accept();
      if (!in) {
        co_return;
      }
      asio::co_spawn(io, serve(std::move(*in)), asio::detached);
    }
  };
  auto client = [&](std::uint32_t i) -> awaitable<void> {
    auto out = co_await p.a->open(request_to("10.0.0.1", static_cast<std::uint16_t>(i + 1)), 2s);
    if (!out.stream) {
      co_return;
    }
    results[i].opened = true;
    // Odd piece sizes, different per stream, so chunk boundaries never line up.
    co_await write_pattern(*out.stream, i, size_of(i), 7'777 + i * 13);
    results[i].down = co_await read_all(*out.stream, i + 1000);
    ++done_a;
  };
  auto acceptor = start(io, accept_loop());
  std::vector<std::shared_ptr<task_state<bool>>> clients;
  for (std::uint32_t i = 0; i < n; ++i) {
    clients.push_back(start(io, client(i)));
  }
  REQUIRE(run_until(io, [&] { return done_a == n && done_b == n; }, 10s));
  rethrow_if_failed(acceptor);
  for (auto& c : clients) {
    rethrow_if_failed(c);
  }
  std::uint32_t bad = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto& r = results[i];
    bool ok = r.opened && r.up.eof && r.up.intact && !r.up.error && r.up.total == size_of(i) && r.down.eof &&
              r.down.intact && !r.down.error && r.down.total == size_of(i);
    if (!ok) {
      ++bad;
      UNSCOPED_INFO("stream " << i << ": opened=" << r.opened << " up=" << r.up.total << "/" << size_of(i)
                              << " intact=" << r.up.intact << " down=" << r.down.total
                              << " intact=" << r.down.intact);
    }
  }
  CHECK(bad == 0);
  CHECK(run_until(io, [&] { return no_streams(p); }, 1s));
}

TEST_CASE("half-close: the other direction keeps flowing until its own FIN", "[mux]") {
  asio::io_context io;
  connected c(io);
  auto& sp = c.sp;
  constexpr std::size_t reply = 300 * 1024;
  auto body = [&]() -> awaitable<void> {
    co_await sp.opener->write(make_bytes("GET / HTTP/1.0\r\n\r\n"));
    co_await sp.opener->shutdown_send();
    co_await sp.opener->shutdown_send();  // idempotent
    auto req = co_await read_text_full(*sp.acceptor);
    CHECK(req.eof);
    CHECK(req.text == "GET / HTTP/1.0\r\n\r\n");
    // Writing after our own FIN is an error; reading is still fine.
    auto late = co_await sp.opener->write(make_bytes("late"));
    CHECK(late == make_error_code(errc::stream_closed));
    // The acceptor still writes; the half-closed opener reads it all.
    auto ec = co_await write_pattern(*sp.acceptor, 5, reply, 40'000, false);
    CHECK_FALSE(ec);
    auto got = co_await read_exactly(*sp.opener, reply);
    CHECK(got == reply);
    CHECK(c.p.a->stream_count() == 1);  // half-open: still there
    co_await sp.acceptor->shutdown_send();
    auto tail = co_await read_all(*sp.opener);
    CHECK(tail.eof);
    CHECK(tail.total == 0);
    auto eof_again = co_await sp.acceptor->read();
    REQUIRE(eof_again);
    CHECK(eof_again->empty());
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return no_streams(c.p); }, 500ms));
}

TEST_CASE("reset propagates with its code and message", "[mux]") {
  asio::io_context io;
  connected c(io);
  auto& sp = c.sp;
  // A read already waiting on the far side is woken by the RESET.
  auto pending = start(io, sp.acceptor->read());
  settle(io);
  REQUIRE_FALSE(pending->done);
  sp.opener->reset(errc::refused, "connect to 10.0.0.1:22 refused");
  REQUIRE(run_until(io, [&] { return pending->done; }, 500ms));
  REQUIRE(pending->value.has_value());
  REQUIRE_FALSE(pending->value->has_value());
  CHECK(pending->value->error() == make_error_code(errc::refused));
  CHECK(sp.acceptor->error_message() == "connect to 10.0.0.1:22 refused");
  auto body = [&]() -> awaitable<void> {
    auto ec = co_await sp.acceptor->write(make_bytes("too late"));
    CHECK(ec == make_error_code(errc::refused));
    auto r = co_await sp.opener->read();
    CHECK_FALSE(r);
    auto again = co_await sp.acceptor->read();
    REQUIRE_FALSE(again);
    CHECK(again.error() == make_error_code(errc::refused));
  };
  REQUIRE(run_test(io, body));
  sp.opener->reset(errc::internal, "second reset is ignored");  // idempotent
  CHECK(run_until(io, [&] { return no_streams(c.p); }, 500ms));
  CHECK(c.p.a->is_open());
  CHECK(c.p.b->is_open());
}

TEST_CASE("destroying a stream handle resets the peer's stream with errc::aborted", "[mux]") {
  asio::io_context io;
  connected c(io);
  auto pending = start(io, c.sp.acceptor->read());
  c.sp.opener.reset();
  REQUIRE(run_until(io, [&] { return pending->done; }, 500ms));
  REQUIRE(pending->value.has_value());
  REQUIRE_FALSE(pending->value->has_value());
  CHECK(pending->value->error() == make_error_code(errc::aborted));
  CHECK(run_until(io, [&] { return no_streams(c.p); }, 500ms));
}

// ---------------------------------------------------------------------------------------
// Keepalive
// ---------------------------------------------------------------------------------------

TEST_CASE("keepalive: a silent peer is detected within the timeout", "[mux][keepalive]") {
  asio::io_context io;
  mux_options ao;
  ao.keepalive = 50ms;
  ao.keepalive_timeout = 200ms;
  auto p = make_session_pair(io, ao);  // b keeps the default 10 s keepalive: it never pings
  auto hello = [&]() -> awaitable<void> {
    auto h = co_await transport::wait_hello(*p.a, 1s);
    REQUIRE(h);
  };
  REQUIRE(run_test(io, hello));
  SECTION("the peer stops answering (its messages are lost)") {
    p.link->from(1).filter = [](std::span<const std::byte>) { return verdict::drop; };
  }
  SECTION("the peer stops reading too (our writes never complete)") {
    p.link->from(1).filter = [](std::span<const std::byte>) { return verdict::drop; };
    p.link->set_stalled(0, true);
  }
  auto closed = start(io, p.a->wait_closed());
  auto t0 = steady::now();
  REQUIRE(run_until(io, [&] { return !p.a->is_open(); }, 1500ms));
  auto took = steady::now() - t0;
  CHECK(took < 1s);
  CHECK(took >= 150ms);
  CHECK(p.a->closed_by().code == goaway_code::timeout);
  CHECK_FALSE(p.a->closed_by().remote);
  // The channel is really released, even when a write was stuck.
  CHECK(run_until(io, [&] { return closed->done; }, 500ms));
  CHECK(run_until(io, [&] { return !p.b->is_open(); }, 500ms));
}

TEST_CASE("keepalive: two live, idle ends stay up", "[mux][keepalive]") {
  asio::io_context io;
  mux_options o;
  o.keepalive = 50ms;
  o.keepalive_timeout = 200ms;
  auto p = make_session_pair(io, o, o);
  auto a_log = record_frames(p.link->from(0));
  auto b_log = record_frames(p.link->from(1));
  CHECK_FALSE(run_until(io, [&] { return !p.a->is_open() || !p.b->is_open(); }, 1000ms));
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
  CHECK(a_log->count(frame_type::ping) >= 5);  // it was not idle because nothing was sent
  CHECK(b_log->count(frame_type::pong) >= 5);
}
