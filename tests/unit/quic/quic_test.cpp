// The QUIC transport (transport/quic) over real UDP sockets on 127.0.0.1, in one process:
// handshake and certificate checks, session acceptance, stream open/accept/reject, bulk
// data both ways, half-close, reset, per-stream flow control, many streams, close reasons
// and dead-peer detection (quic_hostile_test.cpp: clients that do not play along).
// Certificates are made by the openssl CLI for each test run (quic_harness.hpp).
// Every wait is bounded (run_until / run_test deadlines); nothing sleeps to synchronise.
#include "transport/quic/quic_session.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/udp.hpp>

#include "quic_harness.hpp"

using namespace nl;
using namespace nl::test;
using namespace nl::test::quic_h;
using namespace std::chrono_literals;
namespace quic = nl::transport::quic;
using transport::incoming_stream;
using transport::open_outcome;
using transport::stream;
using udp = boost::asio::ip::udp;

// ---------------------------------------------------------------------------------------

TEST_CASE("handshake, the client's token reaches the gateway, the gateway's HELLO the client", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  CHECK(p.token_seen == "token-abc");
  CHECK(p.hello_seen.identity == "acme/laptop");
  CHECK(p.client->identity() == "acme/laptop");
  CHECK(p.client->transport_name() == "quic");
  CHECK(p.server->remote_address().starts_with("127.0.0.1:"));
  CHECK(p.client->is_open());
  CHECK(p.server->is_open());
  CHECK(p.client->stream_count() == 0);
  CHECK(p.server->stream_count() == 0);
}

TEST_CASE("a certificate from an unknown CA fails the dial with a clear message", "[quic][tls]") {
  asio::io_context io;
  auto l = make_listener(io);
  auto opts = client_to(l->local_endpoint().port());
  opts.ca_file = other_cert().cert;
  std::optional<std::expected<quic::dial_result, quic::dial_error>> r;
  auto body = [&]() -> awaitable<void> { r = co_await quic::connect(io.get_executor(), opts); };
  REQUIRE(run_test(io, body, 5000ms));
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  INFO(r->error().message);
  CHECK(r->error().message.find("certificate verification failed for 'localhost'") != std::string::npos);
  CHECK(r->error().message.find("NOT trusted") != std::string::npos);
}

TEST_CASE("a certificate for another name fails the dial", "[quic][tls]") {
  asio::io_context io;
  auto l = make_listener(io);
  auto opts = client_to(l->local_endpoint().port());
  opts.server_name = "gateway.example.net";
  std::optional<std::expected<quic::dial_result, quic::dial_error>> r;
  auto body = [&]() -> awaitable<void> { r = co_await quic::connect(io.get_executor(), opts); };
  REQUIRE(run_test(io, body, 5000ms));
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  INFO(r->error().message);
  CHECK(r->error().message.find("certificate verification failed for 'gateway.example.net'") != std::string::npos);
}

TEST_CASE("the gateway refuses a token: the client gets auth_failed and the reason", "[quic]") {
  asio::io_context io;
  auto l = make_listener(io);
  auto opts = client_to(l->local_endpoint().port(), "bad-token");
  std::optional<std::expected<quic::dial_result, quic::dial_error>> r;
  auto gateway = [&]() -> awaitable<void> {
    auto pending = co_await l->accept();
    REQUIRE(pending);
    CHECK((*pending)->token() == "bad-token");
    (*pending)->reject(errc::auth_failed, "token expired");
  };
  auto client = [&]() -> awaitable<void> { r = co_await quic::connect(io.get_executor(), opts); };
  auto body = [&]() -> awaitable<void> { co_await when_both(gateway(), client()); };
  REQUIRE(run_test(io, body, 5000ms));
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  CHECK(r->error().code == errc::auth_failed);
  CHECK(r->error().message == "token expired");
}

TEST_CASE("nothing listening: the dial fails fast", "[quic]") {
  asio::io_context io;
  std::uint16_t port = 0;
  {
    udp::socket probe(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }
  std::optional<std::expected<quic::dial_result, quic::dial_error>> r;
  auto body = [&]() -> awaitable<void> { r = co_await quic::connect(io.get_executor(), client_to(port)); };
  auto t0 = clock::now();
  REQUIRE(run_test(io, body, 5000ms));
  REQUIRE(r.has_value());
  REQUIRE_FALSE(r->has_value());
  INFO(r->error().message);
  CHECK(clock::now() - t0 < 3s);
}

TEST_CASE("an OPEN the acceptor cannot decode is reset with errc::protocol and a reason", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto req = request_to("db.internal", 5432);
  req.envelope = {std::byte{1}};  // an envelope with a visible target is malformed
  open_outcome out;
  auto body = [&]() -> awaitable<void> { co_await open_into(*p.client, req, out); };
  REQUIRE(run_test(io, body));
  CHECK_FALSE(out.stream);
  CHECK(out.error == make_error_code(errc::protocol));
  CHECK(out.message == "stream does not start with a valid OPEN");
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
  CHECK(p.client->is_open());
}

TEST_CASE("OPEN carries target, peer, envelope, groups and policy: accept and echo", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto req = request_to("", 0, "home");
  req.dest.protocol = proto::transport_protocol::hidden;  // an envelope hides the target
  req.envelope = {std::byte{1}, std::byte{2}, std::byte{3}};
  req.groups = {"ops", "dev"};
  req.policy = R"({"allow":["*"]})";
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.client, *p.server, req);
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
    CHECK(sp.seen.dest.host.empty());
    CHECK(sp.seen.dest.protocol == proto::transport_protocol::hidden);
    CHECK(sp.seen.peer == "home");
    CHECK(sp.seen.envelope == req.envelope);
    CHECK(sp.seen.groups == req.groups);
    CHECK(sp.seen.policy == req.policy);
    CHECK(sp.opener->id() == sp.acceptor->id());
    auto v7 = co_await sp.opener->write(make_bytes("ping"));
    CHECK(!v7);
    auto got = co_await sp.acceptor->read();
    REQUIRE(got);
    CHECK(to_string(*got) == "ping");
    auto v8 = co_await sp.acceptor->write(make_bytes("pong"));
    CHECK(!v8);
    auto back = co_await sp.opener->read();
    REQUIRE(back);
    CHECK(to_string(*back) == "pong");
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("the gateway side opens streams to the client too", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.server, *p.client, request_to("10.0.0.1", 22));
    REQUIRE(sp.opener);
    REQUIRE(sp.acceptor);
    CHECK(sp.seen.dest.host == "10.0.0.1");
    co_await sp.acceptor->write(make_bytes("hi"));
    co_await sp.acceptor->shutdown_send();
    auto v1 = co_await read_text(*sp.opener);
    CHECK(v1== "hi");
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("a reject's code, message and envelope reach the opener", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  open_outcome out;
  auto acceptor = [&]() -> awaitable<void> {
    auto in = co_await p.server->accept();
    REQUIRE(in);
    (*in)->reject(errc::denied, "rule 7 denies db.internal", {std::byte{9}});
  };
  auto body = [&]() -> awaitable<void> {
    co_await when_both(open_into(*p.client, request_to("db.internal", 5432), out), acceptor());
  };
  REQUIRE(run_test(io, body));
  CHECK_FALSE(out.stream);
  CHECK(out.error == make_error_code(errc::denied));
  CHECK(out.message == "rule 7 denies db.internal");
  CHECK(out.envelope == std::vector<std::byte>{std::byte{9}});
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
}

TEST_CASE("an incoming stream dropped unanswered is refused with errc::aborted", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  open_outcome out;
  auto acceptor = [&]() -> awaitable<void> {
    auto in = co_await p.server->accept();
    REQUIRE(in);
  };
  auto body = [&]() -> awaitable<void> { co_await when_both(open_into(*p.client, request_to("x", 1), out), acceptor()); };
  REQUIRE(run_test(io, body));
  CHECK(out.error == make_error_code(errc::aborted));
}

TEST_CASE("4 MiB each way at once arrive intact", "[quic][bulk]") {
  asio::io_context io;
  auto p = make_pair(io);
  constexpr std::size_t total = 4 * 1024 * 1024;
  read_all_result at_acceptor, at_opener;
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.client, *p.server);
    REQUIRE(sp.opener);
    auto a_to_b = [&]() -> awaitable<void> {
      co_await when_both([&]() -> awaitable<void> { co_await write_pattern(*sp.opener, 1, total, 64 * 1024); }(),
                         [&]() -> awaitable<void> { at_acceptor = co_await read_all(*sp.acceptor, 1); }());
    };
    auto b_to_a = [&]() -> awaitable<void> {
      co_await when_both([&]() -> awaitable<void> { co_await write_pattern(*sp.acceptor, 2, total, 50'000); }(),
                         [&]() -> awaitable<void> { at_opener = co_await read_all(*sp.opener, 2); }());
    };
    co_await when_both(a_to_b(), b_to_a());
  };
  REQUIRE(run_test(io, body, 20000ms));
  CHECK(at_acceptor.total == total);
  CHECK(at_acceptor.eof);
  CHECK(at_acceptor.intact);
  CHECK(at_opener.total == total);
  CHECK(at_opener.eof);
  CHECK(at_opener.intact);
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
}

TEST_CASE("half-close: the peer sees EOF, the other direction keeps flowing", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.client, *p.server);
    REQUIRE(sp.opener);
    co_await sp.opener->write(make_bytes("request"));
    co_await sp.opener->shutdown_send();
    auto v2 = co_await read_text(*sp.acceptor);
    CHECK(v2== "request");  // ends at EOF
    auto again = co_await sp.acceptor->read();
    REQUIRE(again);
    CHECK(again->empty());  // EOF stays EOF
    for (int i = 0; i < 3; ++i) {
      auto v9 = co_await sp.acceptor->write(make_bytes("reply " + std::to_string(i) + ";"));
      CHECK(!v9);
    }
    co_await sp.acceptor->shutdown_send();
    auto v3 = co_await read_text(*sp.opener);
    CHECK(v3== "reply 0;reply 1;reply 2;");
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
}

TEST_CASE("reset propagates with its code and message: writes then fail", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.client, *p.server);
    REQUIRE(sp.opener);
    sp.acceptor->reset(errc::refused, "target refused the connection");
    auto r = co_await sp.opener->read();
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::refused));
    CHECK(sp.opener->error_message() == "target refused the connection");
    auto v4 = co_await sp.opener->write(make_bytes("late"));
    CHECK(v4== make_error_code(errc::refused));
  };
  REQUIRE(run_test(io, body));
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
}

TEST_CASE("destroying a stream handle resets the peer's stream with errc::aborted", "[quic]") {
  asio::io_context io;
  auto p = make_pair(io);
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await connect_stream(*p.client, *p.server);
    REQUIRE(sp.opener);
    sp.opener.reset();
    auto r = co_await sp.acceptor->read();
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::aborted));
  };
  REQUIRE(run_test(io, body));
}

TEST_CASE("a reader that never reads stalls only its own stream: memory stays bounded", "[quic][flow]") {
  asio::io_context io;
  auto qo = fast_options();
  qo.stream_window = 256 * 1024;
  qo.max_stream_window = 256 * 1024;
  auto p = make_pair(io, qo, qo);
  constexpr std::size_t total = 4 * 1024 * 1024;
  std::uint64_t slow_written = 0;
  read_all_result fast;
  auto body = [&]() -> awaitable<void> {
    auto slow = co_await connect_stream(*p.client, *p.server);
    auto quick = co_await connect_stream(*p.client, *p.server);
    REQUIRE(slow.opener);
    REQUIRE(quick.opener);
    // The slow stream's writer runs until flow control stops it (never returns).
    asio::co_spawn(io, [&, s = slow.opener.get()]() -> awaitable<void> {
      for (;;) {
        if (co_await s->write(pattern(3, slow_written, 16 * 1024))) {
          co_return;
        }
        slow_written += 16 * 1024;
      }
    }, asio::detached);
    co_await when_both(
        [&]() -> awaitable<void> { co_await write_pattern(*quick.opener, 4, total, 64 * 1024); }(),
        [&]() -> awaitable<void> { fast = co_await read_all(*quick.acceptor, 4); }());
    // The slow one is stuck at window + our send buffer, not at what it was offered.
    CHECK(slow_written <= qo.stream_window + qo.send_buffer + 16 * 1024);
    CHECK(slow_written >= qo.stream_window / 2);
    // And it still delivers everything once read.
    auto target = slow_written;
    auto got = co_await read_exactly(*slow.acceptor, target);
    CHECK(got >= target);
    slow.opener->reset(errc::aborted);
  };
  REQUIRE(run_test(io, body, 20000ms));
  CHECK(fast.total == total);
  CHECK(fast.intact);
}

TEST_CASE("100 concurrent streams each carry distinct data intact", "[quic][bulk]") {
  asio::io_context io;
  auto p = make_pair(io);
  constexpr int n = 100;
  constexpr std::size_t size = 100'000;
  std::vector<read_all_result> results(n);
  std::vector<std::string> hosts(n);
  int finished = 0;
  auto one = [&](int i) -> awaitable<void> {
    auto out = co_await p.client->open(request_to("h" + std::to_string(i), 80), 3s);
    REQUIRE(out.stream);
    co_await write_pattern(*out.stream, static_cast<std::uint32_t>(i), size, 7000);
    auto echo = co_await read_all(*out.stream, static_cast<std::uint32_t>(i) + 1000);
    results[static_cast<std::size_t>(i)] = echo;
    ++finished;
  };
  auto server_one = [&](std::unique_ptr<incoming_stream> in) -> awaitable<void> {
    auto host = in->request().dest.host;
    auto seed = static_cast<std::uint32_t>(std::stoi(host.substr(1)));
    auto s = in->accept();
    auto got = co_await read_all(*s, seed);
    CHECK(got.total == size);
    CHECK(got.intact);
    co_await write_pattern(*s, seed + 1000, size, 9000);
  };
  auto server = [&]() -> awaitable<void> {
    for (int i = 0; i < n; ++i) {
      auto in = co_await p.server->accept();
      REQUIRE(in);
      asio::co_spawn(io, server_one(std::move(*in)), asio::detached);
    }
  };
  asio::co_spawn(io, server(), asio::detached);
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(io, one(i), asio::detached);
  }
  REQUIRE(run_until(io, [&] { return finished == n; }, 20000ms));
  for (int i = 0; i < n; ++i) {
    CHECK(results[static_cast<std::size_t>(i)].total == size);
    CHECK(results[static_cast<std::size_t>(i)].intact);
  }
  CHECK(run_until(io, [&] { return p.client->stream_count() == 0 && p.server->stream_count() == 0; }));
}

TEST_CASE("close() tells the peer why: its streams fail with session_closed", "[quic][goaway]") {
  asio::io_context io;
  auto p = make_pair(io);
  stream_pair sp;
  auto body = [&]() -> awaitable<void> { sp = co_await connect_stream(*p.client, *p.server); };
  REQUIRE(run_test(io, body));
  REQUIRE(sp.opener);
  p.server->close(proto::goaway_code::replaced, "another agent took over");
  REQUIRE(run_until(io, [&] { return !p.client->is_open(); }));
  CHECK(p.client->closed_by().remote);
  CHECK(p.client->closed_by().code == proto::goaway_code::replaced);
  CHECK(p.client->closed_by().message == "another agent took over");
  CHECK_FALSE(p.server->closed_by().remote);
  auto check = [&]() -> awaitable<void> {
    auto r = co_await sp.opener->read();
    REQUIRE_FALSE(r);
    CHECK(r.error() == make_error_code(errc::session_closed));
    auto a = co_await p.client->accept();
    CHECK_FALSE(a);
    co_await p.client->wait_closed();
  };
  REQUIRE(run_test(io, check));
}

TEST_CASE("drain(): new opens fail, the open stream finishes, then the session closes", "[quic][goaway]") {
  asio::io_context io;
  auto p = make_pair(io);
  stream_pair sp;
  auto setup = [&]() -> awaitable<void> { sp = co_await connect_stream(*p.client, *p.server); };
  REQUIRE(run_test(io, setup));
  p.server->drain(proto::goaway_code::normal, "gateway restarting");
  REQUIRE(run_until(io, [&] { return p.client->is_draining(); }));
  auto body = [&]() -> awaitable<void> {
    auto out = co_await p.client->open(request_to("x", 1), 1s);
    CHECK_FALSE(out.stream);
    co_await sp.opener->write(make_bytes("last words"));
    co_await sp.opener->shutdown_send();
    auto v5 = co_await read_text(*sp.acceptor);
    CHECK(v5== "last words");
    co_await sp.acceptor->shutdown_send();
    auto v6 = co_await read_text(*sp.opener);
    CHECK(v6== "");
  };
  REQUIRE(run_test(io, body));
  sp = {};
  REQUIRE(run_until(io, [&] { return !p.client->is_open() && !p.server->is_open(); }, 3000ms));
  CHECK(p.client->closed_by().message == "gateway restarting");
}

TEST_CASE("idle timeout: a peer that vanished is detected: live idle peers stay up", "[quic][keepalive]") {
  asio::io_context io;
  auto qo = fast_options();
  qo.idle_timeout = 600ms;
  qo.keepalive = 150ms;
  auto l = make_listener(io, qo);
  udp_relay relay(io, l->local_endpoint());
  quic_pair p;
  auto opts = client_to(relay.front.local_endpoint().port());
  opts.quic = qo;
  connect_pair(io, *l, opts, p);
  // Idle for several timeouts: keep-alive PINGs keep both ends up.
  CHECK_FALSE(run_until(io, [&] { return !p.client->is_open() || !p.server->is_open(); }, 2000ms));
  relay.cut = true;
  auto t0 = clock::now();
  REQUIRE(run_until(io, [&] { return !p.client->is_open() && !p.server->is_open(); }, 5000ms));
  CHECK(clock::now() - t0 < 3s);
  CHECK(p.client->closed_by().code == proto::goaway_code::timeout);
  CHECK(p.server->closed_by().code == proto::goaway_code::timeout);
}
