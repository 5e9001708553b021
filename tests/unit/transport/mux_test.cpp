// Behaviour of the frame multiplexer (transport/mux/mux_session.cpp) over an in-memory
// channel pair: stream lifecycle, integrity under concurrency, half-close, reset, flow
// control, hostile input, keepalive, GOAWAY/drain, and resource accounting.
// Every wait is bounded; "nothing more happens" is checked with settle() (run every ready
// handler until none is), never with a sleep.
#include "transport/mux/mux_session.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <boost/asio/detached.hpp>

#include "harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using proto::frame_type;
using proto::goaway_code;
using transport::incoming_stream;
using transport::open_outcome;
using transport::open_request;
using transport::stream;

namespace {

struct stream_pair {
  std::unique_ptr<stream> opener;
  std::unique_ptr<stream> acceptor;
  open_request seen;  // the request as the acceptor received it
};

awaitable<void> open_into(session& s, open_request req, open_outcome& out, std::chrono::milliseconds t) {
  out = co_await s.open(std::move(req), t);
}

awaitable<void> accept_into(session& s, stream_pair& sp) {
  auto in = co_await s.accept();
  if (in) {
    sp.seen = (*in)->request();
    sp.acceptor = (*in)->accept();
  }
}

// Opens a stream on `opener` and accepts it on `acceptor`.
awaitable<stream_pair> connect(session& opener, session& acceptor,
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

awaitable<text_result> read_text_full(stream& s) {
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
awaitable<std::uint64_t> read_exactly(stream& s, std::uint64_t n) {
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
void rethrow_if_failed(const std::shared_ptr<task_state<T>>& t) {
  if (t->error) {
    std::rethrow_exception(t->error);
  }
}

bool both_closed(const session_pair& p) { return !p.a->is_open() && !p.b->is_open(); }
bool no_streams(const session_pair& p) { return p.a->stream_count() == 0 && p.b->stream_count() == 0; }

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

}  // namespace

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
    auto sp = co_await connect(*p.a, *p.b);
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
    auto first = co_await connect(*p.b, *p.a, request_to("agent.lan", 22));
    auto second = co_await connect(*p.b, *p.a, request_to("agent.lan", 23));
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
    auto sp = co_await connect(*p.a, *p.b, req);
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
// Flow control
// ---------------------------------------------------------------------------------------

TEST_CASE("flow control: a reader that never reads stops its writer at exactly the window", "[mux][flow]") {
  asio::io_context io;
  constexpr std::uint32_t window = 128 * 1024;
  mux_options ao;
  ao.max_chunk = 16 * 1024;
  mux_options bo;
  bo.window = window;
  connected slow(io, ao, bo);
  auto& p = slow.p;
  stream_pair fast;
  auto open_fast = [&]() -> awaitable<void> { fast = co_await connect(*p.a, *p.b); };
  REQUIRE(run_test(io, open_fast));
  REQUIRE(fast.opener);
  auto a_log = record_frames(p.link->from(0));
  auto b_log = record_frames(p.link->from(1));
  auto id = slow.sp.opener->id();

  auto writer = start(io, slow.sp.opener->write(pattern(1, 0, 300 * 1024)));
  settle(io);
  CHECK(a_log->data_bytes(id) == window);
  CHECK_FALSE(writer->done);  // suspended in write()
  CHECK(b_log->count(frame_type::window, id) == 0);

  // Another stream on the same session moves 4 MiB while `slow` is stuck.
  constexpr std::size_t bulk = 4 * 1024 * 1024;
  auto fast_reader = start(io, read_all(*fast.acceptor, 2));
  auto fast_writer = start(io, write_pattern(*fast.opener, 2, bulk, 256 * 1024));
  REQUIRE(run_until(io, [&] { return fast_reader->done; }, 2s));
  rethrow_if_failed(fast_writer);
  CHECK(fast_reader->value->total == bulk);
  CHECK(fast_reader->value->intact);
  CHECK(fast_reader->value->eof);
  settle(io);
  CHECK(a_log->data_bytes(id) == window);
  CHECK_FALSE(writer->done);

  // Credit comes back only as the application reads: one chunk (16 KiB) is below the
  // update threshold (window / 4), two chunks reach it.
  auto r1 = start(io, slow.sp.acceptor->read());
  settle(io);
  REQUIRE(r1->done);
  CHECK(r1->value->value().size() == 16 * 1024);
  CHECK(b_log->count(frame_type::window, id) == 0);
  CHECK(a_log->data_bytes(id) == window);
  auto r2 = start(io, slow.sp.acceptor->read());
  settle(io);
  REQUIRE(r2->done);
  CHECK(b_log->count(frame_type::window, id) == 1);
  CHECK(a_log->data_bytes(id) == window + 32 * 1024);
  CHECK_FALSE(writer->done);

  // Reading the rest lets the write complete.
  auto rest = start(io, read_exactly(*slow.sp.acceptor, 300 * 1024 - 32 * 1024));
  REQUIRE(run_until(io, [&] { return rest->done && writer->done; }, 1s));
  CHECK(*rest->value == 300 * 1024 - 32 * 1024);
  CHECK_FALSE(*writer->value);
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
}

TEST_CASE("flow control: a window that is not a multiple of max_chunk is used in full", "[mux][flow]") {
  // The brief: a non-reading peer lets the writer send exactly `window` bytes.
  asio::io_context io;
  constexpr std::uint32_t window = 100 * 1024;  // default max_chunk is 64 KiB
  mux_options bo;
  bo.window = window;
  connected c(io, {}, bo);
  auto a_log = record_frames(c.p.link->from(0));
  auto writer = start(io, c.sp.opener->write(pattern(1, 0, 300 * 1024)));
  settle(io);
  CHECK_FALSE(writer->done);
  CHECK(a_log->data_bytes(c.sp.opener->id()) == window);
}

TEST_CASE("flow control: a small window does not deadlock after a short write", "[mux][flow]") {
  // 16 KiB is the smallest window config accepts (config.cpp min_window). The writer sends
  // 100 bytes, the reader reads them (too little to return credit), then the writer sends a
  // full window's worth. Nothing more than the window is ever outstanding, so this must finish.
  asio::io_context io;
  mux_options bo;
  bo.window = 16 * 1024;
  connected c(io, {}, bo);
  auto reader = start(io, read_all(*c.sp.acceptor));
  auto body = [&]() -> awaitable<void> {
    auto ec = co_await c.sp.opener->write(pattern(3, 0, 100));
    CHECK_FALSE(ec);
    ec = co_await write_pattern(*c.sp.opener, 3, 64 * 1024, 64 * 1024, true);
    CHECK_FALSE(ec);
  };
  bool finished = run_test(io, body, 1000ms);
  CHECK(finished);
  REQUIRE(run_until(io, [&] { return reader->done; }, 500ms));
  CHECK(reader->value->total == 64 * 1024 + 100);
  CHECK(reader->value->eof);
}

TEST_CASE("a peer that overruns the window is a protocol error", "[mux][flow]") {
  asio::io_context io;
  constexpr std::uint32_t window = 64 * 1024;
  mux_options bo;
  bo.window = window;
  connected c(io, {}, bo);
  auto id = c.sp.opener->id();
  auto pending = start(io, c.sp.acceptor->read());
  SECTION("one DATA frame larger than the window") {
    c.p.link->inject(1, raw_data(id, window + 1));
  }
  SECTION("two DATA frames that add up to more than the window") {
    c.p.link->inject(1, raw_data(id, 40 * 1024));
    c.p.link->inject(1, raw_data(id, 40 * 1024));
  }
  REQUIRE(run_until(io, [&] { return both_closed(c.p); }, 1s));
  CHECK(c.p.b->closed_by().code == goaway_code::protocol);
  CHECK_FALSE(c.p.b->closed_by().remote);
  CHECK(c.p.a->closed_by().code == goaway_code::protocol);
  CHECK(c.p.a->closed_by().remote);
  REQUIRE(run_until(io, [&] { return pending->done; }, 500ms));
  // The first 40 KiB may or may not have been delivered before the session closed; the
  // read ends either with data or with session_closed, never hangs.
  if (pending->value && !*pending->value) {
    CHECK(pending->value->error() == make_error_code(errc::session_closed));
  }
  CHECK(no_streams(c.p));
}

TEST_CASE("exactly the window is within the rules", "[mux][flow]") {
  asio::io_context io;
  constexpr std::uint32_t window = 64 * 1024;
  mux_options bo;
  bo.window = window;
  connected c(io, {}, bo);
  c.p.link->inject(1, raw_data(c.sp.opener->id(), window));
  auto r = start(io, c.sp.acceptor->read());
  REQUIRE(run_until(io, [&] { return r->done; }, 500ms));
  REQUIRE(r->value->has_value());
  CHECK(r->value->value().size() == window);
  settle(io);
  CHECK(c.p.b->is_open());
}

// ---------------------------------------------------------------------------------------
// Hostile or broken input
// ---------------------------------------------------------------------------------------

TEST_CASE("a malformed frame closes the session with a protocol error", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  auto id = c.sp.opener->id();
  std::vector<std::byte> msg;
  SECTION("unknown frame type") {
    msg = raw_frame(static_cast<frame_type>(0x7f), id, {});
  }
  SECTION("reserved flag bits set") {
    msg = raw_data(id, 10);
    msg[1] = std::byte{0x01};
  }
  SECTION("DATA on stream 0") {
    msg = raw_data(0, 10);
  }
  SECTION("frame truncated at the end of the message") {
    msg = raw_data(id, 100);
    msg.resize(proto::frame_header_size + 10);
  }
  SECTION("fewer bytes than a header") {
    msg = raw_data(id, 0);
    msg.resize(5);
  }
  SECTION("DATA longer than max_data_payload") {
    msg = raw_data(id, 10);
    proto::encode_header({frame_type::data, 0, id, proto::max_data_payload + 1},
                         std::span<std::byte, proto::frame_header_size>(msg.data(), proto::frame_header_size));
  }
  SECTION("malformed WINDOW (zero increment)") {
    std::vector<std::byte> zero(4, std::byte{0});
    msg = raw_frame(frame_type::window, id, zero);
  }
  SECTION("malformed RESET (code 0)") {
    std::vector<std::byte> body{std::byte{0}, std::byte{0}, std::byte{0}};
    msg = raw_frame(frame_type::reset, id, body);
  }
  SECTION("malformed OPEN") {
    std::vector<std::byte> body(3, std::byte{1});
    msg = raw_frame(frame_type::open, id + 2, body);
  }
  SECTION("OPEN with a stream id from the wrong side") {
    std::vector<std::byte> open;
    proto::append_open(open, 2, {65536, {"example.com", 80, proto::transport_protocol::tcp}, "x", {}});
    msg = open;
  }
  SECTION("OPEN reusing an old stream id") {
    std::vector<std::byte> open;
    proto::append_open(open, id, {65536, {"example.com", 80, proto::transport_protocol::tcp}, "x", {}});
    msg = open;
  }
  SECTION("HELLO sent to the acceptor") {
    std::vector<std::byte> hello;
    proto::append_hello(hello, test_hello());
    msg = hello;
  }
  SECTION("FIN with a payload") {
    std::vector<std::byte> body(1, std::byte{0});
    msg = raw_frame(frame_type::fin, id, body);
  }
  SECTION("a valid frame followed by garbage in the same message") {
    msg = raw_data(id, 10);
    msg.push_back(std::byte{0xff});
  }
  auto pending = start(io, c.sp.acceptor->read());
  c.p.link->inject(1, msg);
  REQUIRE(run_until(io, [&] { return both_closed(c.p); }, 1s));
  CHECK(c.p.b->closed_by().code == goaway_code::protocol);
  CHECK_FALSE(c.p.b->closed_by().remote);
  CHECK(c.p.a->closed_by().remote);
  CHECK(c.p.a->closed_by().code == goaway_code::protocol);
  CHECK_FALSE(c.p.a->closed_by().message.empty());
  REQUIRE(run_until(io, [&] { return pending->done; }, 500ms));
}

TEST_CASE("a second HELLO to the initiator is a protocol error", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  std::vector<std::byte> hello;
  proto::append_hello(hello, test_hello());
  c.p.link->inject(0, hello);
  REQUIRE(run_until(io, [&] { return !c.p.a->is_open(); }, 1s));
  CHECK(c.p.a->closed_by().code == goaway_code::protocol);
}

TEST_CASE("the initiator requires HELLO first", "[mux][hostile]") {
  asio::io_context io;
  auto ch = make_channel_pair(io);
  auto link = ch.link;
  auto a = transport::make_mux_session(std::move(ch.a), {.initiator = true});
  std::vector<std::byte> ping;
  proto::append_ping(ping, frame_type::ping, 1);
  link->inject(0, ping);
  REQUIRE(run_until(io, [&] { return !a->is_open(); }, 1s));
  CHECK(a->closed_by().code == goaway_code::protocol);
}

TEST_CASE("frames for a stream that was never opened are a protocol error", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  auto id = c.sp.opener->id();  // 1
  std::vector<std::byte> msg;
  int victim = 1;               // which end receives it
  SECTION("DATA with a future id of the opener's parity, to the acceptor") {
    msg = raw_data(id + 98, 10);
  }
  SECTION("DATA with an acceptor-side id the acceptor never used, to the initiator") {
    msg = raw_data(42, 10);
    victim = 0;
  }
  SECTION("WINDOW for a never-opened stream") {
    std::vector<std::byte> w;
    proto::append_window(w, id + 2, 1000);
    msg = w;
  }
  SECTION("FIN for a never-opened stream") {
    std::vector<std::byte> f;
    proto::append_fin(f, id + 4);
    msg = f;
  }
  SECTION("OPEN_RESULT for a stream nobody opened") {
    std::vector<std::byte> r;
    proto::append_open_result(r, 99, {errc::ok, 65536, ""});
    msg = r;
    victim = 0;
  }
  c.p.link->inject(victim, msg);
  auto& s = victim == 1 ? *c.p.b : *c.p.a;
  REQUIRE(run_until(io, [&] { return !s.is_open(); }, 1s));
  CHECK(s.closed_by().code == goaway_code::protocol);
  CHECK_FALSE(s.closed_by().remote);
}

TEST_CASE("frames for a stream that already finished are ignored", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  auto id = c.sp.opener->id();
  c.sp.opener.reset();  // RESET: the stream is gone on both sides
  REQUIRE(run_until(io, [&] { return no_streams(c.p); }, 500ms));
  // Late frames that were in flight when the stream ended.
  c.p.link->inject(1, raw_data(id, 10));
  std::vector<std::byte> w;
  proto::append_window(w, id, 1000);
  c.p.link->inject(0, w);
  std::vector<std::byte> r;
  proto::append_reset(r, id, {errc::aborted, "late"});
  c.p.link->inject(1, r);
  settle(io);
  CHECK(c.p.a->is_open());
  CHECK(c.p.b->is_open());
}

TEST_CASE("PING is answered with a PONG carrying the same value", "[mux]") {
  asio::io_context io;
  connected c(io);
  auto b_log = record_frames(c.p.link->from(1));
  std::vector<std::byte> ping;
  proto::append_ping(ping, frame_type::ping, 0x1122334455667788ull);
  c.p.link->inject(1, ping);
  REQUIRE(run_until(io, [&] { return b_log->count(frame_type::pong) == 1; }, 500ms));
  for (const auto& f : b_log->frames) {
    if (f.header.type == frame_type::pong) {
      CHECK(proto::decode_ping(f.payload) == 0x1122334455667788ull);
    }
  }
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
        auto sp = co_await connect(*p.a, *p.b);
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
    auto sp = co_await connect(*p.a, *p.b);
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
