// The frame multiplexer's flow control (a window is honoured exactly, a slow reader
// stops only its own writer) and its answers to hostile or broken input (each is a
// protocol error that closes the session, never a crash or a silent acceptance).
// Every wait is bounded; "nothing more happens" is checked with settle(), never a sleep.
#include "mux_fixture.hpp"

using namespace nl;
using namespace nl::test;

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
  auto open_fast = [&]() -> awaitable<void> { fast = co_await connect_stream(*p.a, *p.b); };
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
  constexpr std::uint32_t window = 100 * 1024;  // default max_chunk is just under 64 KiB
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

TEST_CASE("flow control: the streams of a session share a bounded total of windows", "[mux][flow]") {
  // b's windows for a -> b data: 256 KiB each, 512 KiB for the whole session. A peer that
  // never has its data read can make b hold the session's total plus the minimum window
  // (64 KiB) for each stream opened once the total is taken, not window x streams.
  asio::io_context io;
  constexpr std::uint32_t window = 256 * 1024;
  mux_options ao;
  ao.max_chunk = 16 * 1024;  // a divides each window exactly
  mux_options bo;
  bo.window = window;
  bo.session_window = 2 * window;
  connected first(io, ao, bo);
  auto& p = first.p;
  auto a_log = record_frames(p.link->from(0));
  std::vector<stream_pair> more(3);
  for (auto& sp : more) {
    auto open = [&]() -> awaitable<void> { sp = co_await connect_stream(*p.a, *p.b); };
    REQUIRE(run_test(io, open));
    REQUIRE(sp.opener);
  }
  std::vector<stream*> openers{first.sp.opener.get(), more[0].opener.get(), more[1].opener.get(),
                               more[2].opener.get()};
  std::vector<std::shared_ptr<task_state<error_code>>> writers;
  for (auto* o : openers) {
    writers.push_back(start(io, o->write(pattern(7, 0, 300 * 1024))));
  }
  settle(io);
  CHECK(a_log->data_bytes(openers[0]->id()) == window);
  CHECK(a_log->data_bytes(openers[1]->id()) == window);
  CHECK(a_log->data_bytes(openers[2]->id()) == 64 * 1024);
  CHECK(a_log->data_bytes(openers[3]->id()) == 64 * 1024);
  for (auto& w : writers) {
    CHECK_FALSE(w->done);
  }

  // The first two streams end: their windows go back to the session, and the third
  // stream's window grows to the full 256 KiB with its next credit (16 KiB read back).
  first.sp.opener->reset(errc::aborted, "done");
  more[0].opener->reset(errc::aborted, "done");
  settle(io);
  auto r = start(io, more[1].acceptor->read());
  settle(io);
  REQUIRE(r->done);
  auto got = r->value->value().size();
  CHECK(got == 16 * 1024);
  CHECK(a_log->data_bytes(openers[2]->id()) == got + window);
  CHECK(a_log->data_bytes(openers[3]->id()) == 64 * 1024);
  CHECK(p.a->is_open());
  CHECK(p.b->is_open());
  p.a->close(goaway_code::normal, "end of test");
  REQUIRE(run_until(io, [&] { return std::all_of(writers.begin(), writers.end(), [](auto& w) { return w->done; }); }, 1s));
}

// A session whose windows together are one stream's window, with chunks that divide it.
constexpr std::uint32_t one_window = 128 * 1024;
mux_options one_window_session() {
  mux_options o;
  o.window = one_window;
  o.session_window = one_window;
  o.max_chunk = 16 * 1024;
  return o;
}

TEST_CASE("flow control: every way a stream ends gives its window back", "[mux][flow]") {
  // With each session's total equal to one window, a window not given back would leave
  // the next stream less than a full one, in one direction or the other.
  asio::io_context io;
  auto o = one_window_session();
  auto p = make_session_pair(io, o, o);
  auto pair = [&]() {
    stream_pair sp;
    auto open = [&]() -> awaitable<void> { sp = co_await connect_stream(*p.a, *p.b); };
    REQUIRE(run_test(io, open));
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
    return sp;
  };
  SECTION("both directions written to the end and read to the end") {
    auto sp = pair();
    auto ra = start(io, read_all(*sp.opener));
    auto rb = start(io, read_all(*sp.acceptor));
    auto wa = start(io, write_pattern(*sp.opener, 1, 300 * 1024, 64 * 1024));
    auto wb = start(io, write_pattern(*sp.acceptor, 2, 300 * 1024, 64 * 1024));
    REQUIRE(run_until(io, [&] { return ra->done && rb->done && wa->done && wb->done; }, 2s));
    CHECK(ra->value->total == 300 * 1024);
    CHECK(rb->value->total == 300 * 1024);
  }
  SECTION("reset by the opener") {
    auto sp = pair();
    sp.opener->reset(errc::aborted, "bye");
  }
  SECTION("reset by the acceptor") {
    auto sp = pair();
    sp.acceptor->reset(errc::aborted, "bye");
  }
  SECTION("both stream objects dropped") {
    auto sp = pair();
  }
  SECTION("finished both ways with data never read, then dropped") {
    auto sp = pair();
    auto wa = start(io, write_pattern(*sp.opener, 1, 100 * 1024, 64 * 1024));
    auto wb = start(io, write_pattern(*sp.acceptor, 2, 100 * 1024, 64 * 1024));
    REQUIRE(run_until(io, [&] { return wa->done && wb->done; }, 1s));
    settle(io);
    CHECK(p.a->stream_count() == 0);  // both FINs crossed: the streams are finished
    CHECK(p.b->stream_count() == 0);
  }
  SECTION("refused by the acceptor") {
    auto body = [&]() -> awaitable<void> {
      open_outcome out;
      auto refuse = [&]() -> awaitable<void> {
        auto in = co_await p.b->accept();
        if (in) {
          (*in)->reject(errc::refused, "no");
        }
      };
      co_await when_both(open_into(*p.a, request_to("example.com", 80), out), refuse());
      bool refused = !out.stream && out.error == make_error_code(errc::refused);
      CHECK(refused);
    };
    REQUIRE(run_test(io, body));
  }
  settle(io);
  CHECK(no_streams(p));

  auto next = pair();
  auto a_log = record_frames(p.link->from(0));
  auto b_log = record_frames(p.link->from(1));
  auto wa = start(io, next.opener->write(pattern(5, 0, 200 * 1024)));
  auto wb = start(io, next.acceptor->write(pattern(6, 0, 200 * 1024)));
  settle(io);
  CHECK(a_log->data_bytes(next.opener->id()) == one_window);
  CHECK(b_log->data_bytes(next.opener->id()) == one_window);
  p.a->close(goaway_code::normal, "end of test");
  REQUIRE(run_until(io, [&] { return wa->done && wb->done; }, 1s));
}

TEST_CASE("flow control: a stream the peer has finished sending on gives its window back", "[mux][flow]") {
  // Once the peer's FIN is read, no more data can come on that stream, even while we keep
  // sending on it: its window goes back to the session at once.
  asio::io_context io;
  auto o = one_window_session();
  connected half(io, o, o);
  auto& p = half.p;
  auto wa = start(io, write_pattern(*half.sp.opener, 1, 100 * 1024, 64 * 1024));
  auto rb = start(io, read_all(*half.sp.acceptor));
  REQUIRE(run_until(io, [&] { return wa->done && rb->done; }, 1s));
  CHECK(rb->value->eof);
  CHECK(p.b->stream_count() == 1);  // b may still send on it

  stream_pair next;
  auto open = [&]() -> awaitable<void> { next = co_await connect_stream(*p.a, *p.b); };
  REQUIRE(run_test(io, open));
  REQUIRE(next.opener);
  auto a_log = record_frames(p.link->from(0));
  auto w = start(io, next.opener->write(pattern(5, 0, 200 * 1024)));
  settle(io);
  CHECK(a_log->data_bytes(next.opener->id()) == one_window);
  p.a->close(goaway_code::normal, "end of test");
  REQUIRE(run_until(io, [&] { return w->done; }, 1s));
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

// A peer that sends PINGs (or anything else we must answer) but never reads its socket must
// not make us queue answers without bound: the reader stops taking its messages while the
// answers wait, and goes on once they have been sent.
TEST_CASE("a peer that floods PINGs without reading is not read further", "[mux][hostile]") {
  asio::io_context io;
  connected c(io);
  c.p.link->set_stalled(1, true);  // b's writes never complete: a stopped reading
  std::vector<std::byte> pings;
  for (int i = 0; i < 50'000; ++i) {
    proto::append_ping(pings, frame_type::ping, static_cast<std::uint64_t>(i));
  }
  constexpr std::size_t messages = 8;  // 400 000 PONGs, 8 MB, if b answered them all
  for (std::size_t i = 0; i < messages; ++i) {
    c.p.link->inject(1, pings);
  }
  settle(io);
  auto& unread = c.p.link->to(1).queue;
  CHECK(unread.size() >= messages - 3);  // at most ~2 MB of answers wait
  CHECK(c.p.b->is_open());
  c.p.link->set_stalled(1, false);  // a reads again: b answers everything and reads on
  REQUIRE(run_until(io, [&] { return unread.empty(); }, 5s));
  settle(io);
  CHECK(c.p.a->is_open());
  CHECK(c.p.b->is_open());
}

// The window bounds the bytes a peer can make us hold, not the number of frames: 1-byte
// DATA frames must not cost a buffer each (with its allocation and bookkeeping, some 70
// bytes per byte of payload), so small payloads are gathered into shared chunks.
TEST_CASE("tiny DATA frames are gathered into chunks instead of a buffer each", "[mux][flow][hostile]") {
  asio::io_context io;
  connected c(io);
  auto id = c.sp.opener->id();
  constexpr std::size_t frames = 20'000;
  std::vector<std::byte> msg;
  for (std::size_t i = 0; i < frames; ++i) {
    auto f = raw_data(id, 1);
    msg.insert(msg.end(), f.begin(), f.end());
  }
  c.p.link->inject(1, msg);
  settle(io);
  std::size_t got = 0, reads = 0;
  while (got < frames) {
    auto r = start(io, c.sp.acceptor->read());
    REQUIRE(run_until(io, [&] { return r->done; }, 500ms));
    REQUIRE(r->value->has_value());
    REQUIRE_FALSE(r->value->value().empty());
    got += r->value->value().size();
    ++reads;
  }
  CHECK(got == frames);
  CHECK(reads <= 2 + frames / 1024);  // chunks of a few KiB, whatever the frames' size
  CHECK(c.p.b->is_open());
}
