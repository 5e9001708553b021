// End-to-end streams (transport/secure_stream) and datagram streams (transport/datagram)
// over a real mux session pair on the in-memory channel: the handshake in OPEN /
// OPEN_RESULT, integrity of bulk data both ways, refusals, and what a tampering relay
// can and cannot do (modelled by writing raw records on an unwrapped stream).
#include "transport/secure_stream.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "transport/datagram.hpp"

using namespace nl;
using namespace nl::test;
using namespace std::chrono_literals;
using transport::open_outcome;
using transport::stream;

namespace {

proto::target tcp_target(std::string host, std::uint16_t port) {
  proto::target t;
  t.host = std::move(host);
  t.port = port;
  t.protocol = proto::transport_protocol::tcp;
  return t;
}

struct secure_pair {
  open_outcome out;                      // client side
  std::unique_ptr<stream> agent;         // agent side
  proto::target seen_dest;               // what the agent decrypted
  transport::open_request seen_request;  // what the agent's OPEN looked like (what a gateway sees)
  std::string agent_error;               // read_secure_open's error, if any
};

enum class answer { accept, deny };

awaitable<void> agent_side(session& s, const e2e::static_keypair& keys, const std::optional<e2e::key>& psk,
                           answer v, secure_pair& sp) {
  auto in = co_await s.accept();
  if (!in) {
    co_return;
  }
  sp.seen_request = (*in)->request();
  auto r = transport::read_secure_open(**in, keys, psk);
  if (!r) {
    sp.agent_error = r.error();
    (*in)->reject(errc::e2e_failed, r.error());
    co_return;
  }
  sp.seen_dest = r->dest;
  if (v == answer::accept) {
    sp.agent = transport::accept_secure(**in, *r);
  } else {
    transport::reject_secure(**in, *r, errc::denied, "rule 7 (deny cidr 10.0.0.0/8)");
  }
}

awaitable<void> client_side(session& s, transport::e2e_peer pin, proto::target dest, secure_pair& sp) {
  sp.out = co_await transport::open_secure(s, "home", dest, pin, 1s);
}

awaitable<secure_pair> secure_open(session_pair& p, const e2e::static_keypair& agent_keys, transport::e2e_peer pin,
                                   std::optional<e2e::key> agent_psk = {}, answer v = answer::accept,
                                   proto::target dest = tcp_target("db.internal", 5432)) {
  secure_pair sp;
  co_await when_both(client_side(*p.a, pin, dest, sp), agent_side(*p.b, agent_keys, agent_psk, v, sp));
  co_return sp;
}

transport::e2e_peer pin_of(const e2e::static_keypair& k) {
  transport::e2e_peer p;
  p.public_key = k.public_key;
  return p;
}

bool contains(std::span<const std::byte> hay, std::string_view needle) {
  std::string_view h(reinterpret_cast<const char*>(hay.data()), hay.size());
  return h.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("an e2e stream hides the destination and carries bulk data both ways", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await secure_open(p, keys, pin_of(keys));
    REQUIRE(sp.out.stream);
    REQUIRE(sp.agent);
    CHECK(sp.seen_dest.host == "db.internal");
    CHECK(sp.seen_dest.port == 5432);
    // what the gateway would see in the OPEN: no host, no port, protocol hidden
    CHECK(sp.seen_request.dest.host.empty());
    CHECK(sp.seen_request.dest.port == 0);
    CHECK(sp.seen_request.dest.protocol == proto::transport_protocol::hidden);
    CHECK_FALSE(contains(sp.seen_request.envelope, "db.internal"));
    constexpr std::size_t total = 3 * 1024 * 1024 + 17;
    read_all_result up, down;
    auto& c = *sp.out.stream;
    auto& a = *sp.agent;
    auto c_write = [&]() -> awaitable<void> { co_await write_pattern(c, 11, total, 100'000); };
    auto a_write = [&]() -> awaitable<void> { co_await write_pattern(a, 12, total, 70'001); };
    auto a_read = [&]() -> awaitable<void> { up = co_await read_all(a, 11); };
    auto c_read = [&]() -> awaitable<void> { down = co_await read_all(c, 12); };
    co_await when_both(when_both(c_write(), a_write()), when_both(a_read(), c_read()));
    CHECK_FALSE(up.error);
    CHECK(up.eof);
    CHECK(up.total == total);
    CHECK(up.intact);
    CHECK_FALSE(down.error);
    CHECK(down.eof);
    CHECK(down.total == total);
    CHECK(down.intact);
  };
  REQUIRE(run_test(io, body, 20s));
}

TEST_CASE("a wrong pinned key is refused and both fingerprints are named", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  auto other = e2e::generate_keypair();
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await secure_open(p, keys, pin_of(other));
    CHECK_FALSE(sp.out.stream);
    CHECK_FALSE(sp.agent);
    CHECK(sp.out.error == make_error_code(errc::e2e_failed));
    CHECK_THAT(sp.out.message, Catch::Contains(e2e::fingerprint(other.public_key)));
    CHECK_THAT(sp.out.message, Catch::Contains(e2e::fingerprint(keys.public_key)));
    CHECK_THAT(sp.agent_error, Catch::Contains(e2e::fingerprint(keys.public_key)));
  };
  REQUIRE(run_test(io, body, 5s));
}

TEST_CASE("a passphrase must match on both sides", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  e2e::key good{}, bad{};
  good[0] = std::byte{1};
  bad[0] = std::byte{2};
  auto body = [&]() -> awaitable<void> {
    auto pin = pin_of(keys);
    pin.psk = bad;
    auto sp = co_await secure_open(p, keys, pin, good);
    CHECK(sp.out.error == make_error_code(errc::e2e_failed));
    pin.psk = good;
    auto sp2 = co_await secure_open(p, keys, pin, good);
    CHECK(sp2.out.stream);
    auto sp3 = co_await secure_open(p, keys, pin_of(keys), good);  // no phrase on the client
    CHECK(sp3.out.error == make_error_code(errc::e2e_failed));
  };
  REQUIRE(run_test(io, body, 5s));
}

TEST_CASE("an e2e refusal carries the rule inside the envelope only", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  auto body = [&]() -> awaitable<void> {
    auto sp = co_await secure_open(p, keys, pin_of(keys), {}, answer::deny);
    CHECK_FALSE(sp.out.stream);
    CHECK(sp.out.error == make_error_code(errc::denied));
    CHECK(sp.out.message == "rule 7 (deny cidr 10.0.0.0/8)");
  };
  REQUIRE(run_test(io, body, 5s));
}

TEST_CASE("a plaintext acceptance is never used for a pinned agent", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  auto body = [&]() -> awaitable<void> {
    secure_pair sp;
    auto plain_agent = [&]() -> awaitable<void> {
      auto in = co_await p.b->accept();
      REQUIRE(in);
      sp.agent = (*in)->accept();  // ignores the envelope: a downgrade attempt
    };
    co_await when_both(client_side(*p.a, pin_of(keys), tcp_target("x", 1), sp), plain_agent());
    CHECK_FALSE(sp.out.stream);
    CHECK(sp.out.error == make_error_code(errc::e2e_failed));
  };
  REQUIRE(run_test(io, body, 5s));
}

// A relay that tampers: the client side is a secure stream, the "agent" side is the raw mux
// stream under a real responder, so the test writes records (or junk) itself.
struct raw_pair {
  std::unique_ptr<stream> secure;  // client, wrapped
  std::unique_ptr<stream> raw;     // agent, unwrapped
  e2e::traffic_keys agent_keys;
};

awaitable<raw_pair> open_raw(session_pair& p, const e2e::static_keypair& keys) {
  raw_pair rp;
  open_outcome out;
  auto agent = [&]() -> awaitable<void> {
    auto in = co_await p.b->accept();
    REQUIRE(in);
    auto r = e2e::responder::read(keys, std::nullopt, (*in)->request().envelope);
    REQUIRE(r);
    auto m2 = r->finish(proto::encode_e2e_verdict({}), rp.agent_keys);
    rp.raw = (*in)->accept(std::move(m2));
  };
  auto client = [&]() -> awaitable<void> {
    out = co_await transport::open_secure(*p.a, "home", tcp_target("x", 1), pin_of(keys), 1s);
  };
  co_await when_both(client(), agent());
  rp.secure = std::move(out.stream);
  co_return rp;
}

bytes record(e2e::sealer& s, std::string_view text, bool final = false) {
  bytes b(text.size() + e2e::record_overhead);
  auto n = s.seal(std::as_bytes(std::span(text.data(), text.size())), final,
                  std::span<std::byte>(b.data(), text.size() + e2e::record_overhead));
  b.commit(n);
  return b;
}

TEST_CASE("records that are modified, replayed, reordered or truncated reset the stream", "[e2e][secure]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto keys = e2e::generate_keypair();
  enum class attack { none, flip, replay, reorder, drop, truncate, after_final };
  auto which = GENERATE(attack::none, attack::flip, attack::replay, attack::reorder, attack::drop, attack::truncate,
                        attack::after_final);
  // 0: each record in one write (opened in place); else the records cut into writes of this
  // many bytes, so that records straddle the chunks the reader gets (opened in pieces)
  auto piece = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{23});
  CAPTURE(piece);
  auto body = [&]() -> awaitable<void> {
    auto rp = co_await open_raw(p, keys);
    REQUIRE(rp.secure);
    REQUIRE(rp.raw);
    e2e::sealer s(rp.agent_keys.send);
    auto r1 = record(s, "first");
    auto r2 = record(s, "second");
    auto r3 = record(s, "", true);
    auto copy = [](const bytes& b) { return bytes::copy_of(b.span()); };
    std::vector<bytes> sent;
    auto send = [&sent](bytes b) { sent.push_back(std::move(b)); };
    switch (which) {
      case attack::none:
        send(std::move(r1));
        send(std::move(r2));
        send(std::move(r3));
        break;
      case attack::flip: {
        r2.data()[7] ^= std::byte{0x20};
        send(std::move(r1));
        send(std::move(r2));
        send(std::move(r3));
        break;
      }
      case attack::replay:
        send(copy(r1));
        send(std::move(r1));
        break;
      case attack::reorder:
        send(std::move(r2));
        send(std::move(r1));
        break;
      case attack::drop:
        send(std::move(r2));
        break;
      case attack::truncate:
        send(std::move(r1));
        send(std::move(r2));
        break;  // FIN without the final record
      case attack::after_final:
        send(std::move(r1));
        send(std::move(r3));
        send(std::move(r2));
        break;
    }
    if (piece == 0) {
      for (auto& b : sent) {
        co_await rp.raw->write(std::move(b));
      }
    } else {
      std::vector<std::byte> all;
      for (auto& b : sent) {
        all.insert(all.end(), b.span().begin(), b.span().end());
      }
      for (std::size_t off = 0; off < all.size(); off += piece) {
        co_await rp.raw->write(bytes::copy_of(std::span(all).subspan(off, std::min(piece, all.size() - off))));
      }
    }
    co_await rp.raw->shutdown_send();
    std::string got;
    error_code err;
    for (;;) {
      auto r = co_await rp.secure->read();
      if (!r) {
        err = r.error();
        break;
      }
      if (r->empty()) {
        break;
      }
      got += to_string(*r);
    }
    if (which == attack::none) {
      CHECK_FALSE(err);
      CHECK(got == "firstsecond");
    } else {
      CHECK(err == make_error_code(errc::e2e_failed));
      CHECK_THAT(rp.secure->error_message(), Catch::Contains("end-to-end check failed"));
      // never anything but an intact prefix
      CHECK(std::string_view("firstsecond").substr(0, got.size()) == got);
    }
  };
  REQUIRE(run_test(io, body, 5s));
}

TEST_CASE("datagram streams keep boundaries however the bytes are chunked", "[udp]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    transport::open_outcome out;
    std::unique_ptr<stream> acc;
    auto open = [&]() -> awaitable<void> {
      proto::target t = tcp_target("127.0.0.1", 53);
      t.protocol = proto::transport_protocol::udp;
      out = co_await p.a->open(transport::make_open_request(t, "home"), 1s);
    };
    auto accept = [&]() -> awaitable<void> {
      auto in = co_await p.b->accept();
      REQUIRE(in);
      CHECK((*in)->request().dest.protocol == proto::transport_protocol::udp);
      acc = (*in)->accept();
    };
    co_await when_both(open(), accept());
    REQUIRE(out.stream);
    auto& w = *out.stream;
    // two datagrams in one write, one split over two writes, an empty one, a maximal one
    std::vector<std::byte> joined;
    for (auto d : {std::string("alpha"), std::string("beta")}) {
      auto h = proto::datagram_header(d.size());
      joined.insert(joined.end(), h.begin(), h.end());
      for (char ch : d) joined.push_back(static_cast<std::byte>(ch));
    }
    co_await w.write(bytes::copy_of(std::span<const std::byte>(joined)));
    auto g = transport::frame_datagram(std::as_bytes(std::span("gamma-split", 11)));
    auto first = bytes::copy_of(g.data(), 4);
    auto rest = bytes::copy_of(g.data() + 4, g.size() - 4);
    co_await w.write(std::move(first));
    co_await w.write(std::move(rest));
    co_await transport::write_datagram(w, {});
    std::vector<std::byte> big(proto::max_datagram, std::byte{0x5a});
    co_await transport::write_datagram(w, big);
    co_await w.shutdown_send();
    transport::datagram_reader rd(*acc);
    std::vector<std::string> got;
    for (;;) {
      auto d = co_await rd.next();
      REQUIRE(d);
      if (!*d) break;
      got.push_back(to_string(**d));
    }
    REQUIRE(got.size() == 5);
    CHECK(got[0] == "alpha");
    CHECK(got[1] == "beta");
    CHECK(got[2] == "gamma-split");
    CHECK(got[3].empty());
    CHECK(got[4].size() == proto::max_datagram);
  };
  REQUIRE(run_test(io, body, 5s));
}

TEST_CASE("a flow that ends inside a datagram is an error", "[udp]") {
  asio::io_context io;
  auto p = make_session_pair(io);
  auto body = [&]() -> awaitable<void> {
    transport::open_outcome out;
    std::unique_ptr<stream> acc;
    auto open = [&]() -> awaitable<void> { out = co_await p.a->open(transport::make_open_request(tcp_target("h", 1), "x"), 1s); };
    auto accept = [&]() -> awaitable<void> {
      auto in = co_await p.b->accept();
      REQUIRE(in);
      acc = (*in)->accept();
    };
    co_await when_both(open(), accept());
    REQUIRE(out.stream);
    co_await out.stream->write(make_bytes(std::string("\x00\x09partial", 9)));
    co_await out.stream->shutdown_send();
    transport::datagram_reader rd(*acc);
    auto d = co_await rd.next();
    CHECK_FALSE(d);
  };
  REQUIRE(run_test(io, body, 5s));
}
