#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>

#include "e2e/e2e.hpp"
#include "tests/unit/e2e/util.hpp"

using namespace nl::e2e;
using nl::e2e::test::bytes;
using nl::e2e::test::str;

namespace {

const std::string cannot_decrypt = "cannot decrypt: the client pinned a different key or passphrase for this agent";
const std::string agent_unproven = "the agent could not prove it holds the pinned key";

struct completed {
  std::string client_payload;  // as the agent read it
  std::string agent_payload;   // as the client read it
  traffic_keys client;
  traffic_keys agent;
};

completed run(const static_keypair& agent, const std::optional<key>& client_psk, const std::optional<key>& agent_psk,
              std::string_view p1 = "tcp example.com:22", std::string_view p2 = "ok") {
  std::vector<std::byte> m1;
  auto i = initiator::start(agent.public_key, client_psk, bytes(p1), m1);
  auto r = responder::read(agent, agent_psk, m1);
  REQUIRE(r.has_value());
  completed c;
  c.client_payload = str(r->payload());
  const auto m2 = r->finish(bytes(p2), c.agent);
  auto got = i.finish(m2, c.client);
  REQUIRE(got.has_value());
  c.agent_payload = str(*got);
  return c;
}

}  // namespace

TEST_CASE("handshake round trip without and with a psk", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::optional<key> psk;
  SECTION("no psk") {}
  SECTION("psk") { psk = test::counting_key(0x60); }
  const auto c = run(agent, psk, psk);
  CHECK(c.client_payload == "tcp example.com:22");
  CHECK(c.agent_payload == "ok");
  CHECK(c.client.send == c.agent.recv);
  CHECK(c.client.recv == c.agent.send);
  CHECK(c.client.send != c.client.recv);
}

TEST_CASE("handshake payloads may be empty or of the maximum size", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const std::string big(max_handshake_payload, 'x');
  auto c = run(agent, std::nullopt, std::nullopt, "", big);
  CHECK(c.client_payload.empty());
  CHECK(c.agent_payload == big);
  c = run(agent, std::nullopt, std::nullopt, big, "");
  CHECK(c.client_payload == big);
  CHECK(c.agent_payload.empty());
}

TEST_CASE("oversized handshake payloads are refused by the builder", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const auto big = bytes(std::string(max_handshake_payload + 1, 'x'));
  std::vector<std::byte> m1;
  CHECK_THROWS_AS(initiator::start(agent.public_key, std::nullopt, big, m1), std::invalid_argument);
  initiator::start(agent.public_key, std::nullopt, bytes("a"), m1);
  auto r = responder::read(agent, std::nullopt, m1);
  REQUIRE(r);
  traffic_keys k;
  CHECK_THROWS_AS(r->finish(big, k), std::invalid_argument);
  // A refused payload does not spend the responder.
  CHECK_NOTHROW(r->finish(bytes("b"), k));
}

TEST_CASE("traffic keys differ per stream", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const auto a = run(agent, std::nullopt, std::nullopt);
  const auto b = run(agent, std::nullopt, std::nullopt);
  CHECK(a.client.send != b.client.send);
  CHECK(a.client.recv != b.client.recv);
}

TEST_CASE("a client pinning another key cannot reach the agent", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const auto other = generate_keypair();
  std::vector<std::byte> m1;
  initiator::start(other.public_key, std::nullopt, bytes("tcp example.com:22"), m1);
  auto r = responder::read(agent, std::nullopt, m1);
  REQUIRE_FALSE(r);
  CHECK(r.error() == cannot_decrypt);
}

TEST_CASE("a wrong or missing passphrase fails message 1", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const key p1 = test::counting_key(1);
  const key p2 = test::counting_key(2);
  struct combo {
    std::optional<key> client, agent;
  };
  for (const auto& c : {combo{p1, p2}, combo{p1, std::nullopt}, combo{std::nullopt, p1}}) {
    std::vector<std::byte> m1;
    initiator::start(agent.public_key, c.client, bytes("x"), m1);
    auto r = responder::read(agent, c.agent, m1);
    REQUIRE_FALSE(r);
    CHECK(r.error() == cannot_decrypt);
  }
}

TEST_CASE("every modified byte of message 1 is detected", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1;
  initiator::start(agent.public_key, std::nullopt, bytes("tcp example.com:22"), m1);
  REQUIRE(responder::read(agent, std::nullopt, m1));
  for (std::size_t i = 0; i < m1.size(); ++i) {
    for (std::byte flip : {std::byte{0x01}, std::byte{0x80}}) {
      auto bad = m1;
      bad[i] ^= flip;
      auto r = responder::read(agent, std::nullopt, bad);
      INFO("byte " << i);
      REQUIRE_FALSE(r);
      if (i == 0) {
        CHECK_THAT(r.error(), Catch::StartsWith("unsupported e2e handshake version"));
      } else if (r.error() != cannot_decrypt) {
        // A flipped ephemeral key may land on a low-order point.
        CHECK(r.error() == "malformed e2e handshake message 1: invalid ephemeral key");
      }
    }
  }
}

TEST_CASE("every modified byte of message 2 is detected", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  const key e = test::counting_key(0x20);
  std::vector<std::byte> m1;
  (void)initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("x"), e, m1);
  auto r = responder::read(agent, std::nullopt, m1);
  REQUIRE(r);
  traffic_keys rk;
  const auto m2 = r->finish(bytes("verdict: ok"), rk);
  for (std::size_t i = 0; i < m2.size(); ++i) {
    auto bad = m2;
    bad[i] ^= std::byte{0x04};
    std::vector<std::byte> again;
    auto i2 = initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("x"), e, again);
    REQUIRE(again == m1);
    traffic_keys k;
    auto got = i2.finish(bad, k);
    INFO("byte " << i);
    REQUIRE_FALSE(got);
    if (got.error() != "malformed e2e handshake message 2: invalid ephemeral key") {
      CHECK_THAT(got.error(), Catch::StartsWith(agent_unproven));
    }
  }
  // The unmodified message still completes.
  std::vector<std::byte> again;
  auto i3 = initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("x"), e, again);
  traffic_keys k;
  auto ok = i3.finish(m2, k);
  REQUIRE(ok);
  CHECK(str(*ok) == "verdict: ok");
  CHECK(k.send == rk.recv);
}

TEST_CASE("truncated and oversized handshake messages give clean errors", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1;
  const key e = test::counting_key(0x20);
  (void)initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("payload"), e, m1);
  for (std::size_t n = 0; n < m1.size(); ++n) {
    auto r = responder::read(agent, std::nullopt, std::span(m1).first(n));
    INFO("length " << n);
    REQUIRE_FALSE(r);
    if (n < 49) {
      CHECK_THAT(r.error(), Catch::StartsWith("malformed e2e handshake message 1: " + std::to_string(n) + " bytes"));
    } else {
      CHECK(r.error() == cannot_decrypt);
    }
  }
  std::vector<std::byte> huge(1 + 32 + max_handshake_payload + 16 + 1, std::byte{1});
  auto r = responder::read(agent, std::nullopt, huge);
  REQUIRE_FALSE(r);
  CHECK(r.error() == "malformed e2e handshake message 1: 1074 bytes where 49 to 1073 are expected");

  auto ok = responder::read(agent, std::nullopt, m1);
  REQUIRE(ok);
  traffic_keys rk;
  const auto m2 = ok->finish(bytes("verdict"), rk);
  for (std::size_t n = 0; n < m2.size(); ++n) {
    std::vector<std::byte> again;
    auto i = initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("payload"), e, again);
    traffic_keys k;
    auto got = i.finish(std::span(m2).first(n), k);
    INFO("length " << n);
    REQUIRE_FALSE(got);
    if (n < 48) {
      CHECK_THAT(got.error(), Catch::StartsWith("malformed e2e handshake message 2: " + std::to_string(n) + " bytes"));
    } else {
      CHECK_THAT(got.error(), Catch::StartsWith(agent_unproven));
    }
  }
  std::vector<std::byte> again;
  auto i = initiator::start_with_ephemeral(agent.public_key, std::nullopt, bytes("payload"), e, again);
  traffic_keys k;
  auto got = i.finish(std::vector<std::byte>(32 + max_handshake_payload + 16 + 1), k);
  REQUIRE_FALSE(got);
  CHECK(got.error() == "malformed e2e handshake message 2: 1073 bytes where 48 to 1072 are expected");
}

TEST_CASE("message 2 of another stream is refused", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1a, m1b;
  auto ia = initiator::start(agent.public_key, std::nullopt, bytes("a"), m1a);
  auto ib = initiator::start(agent.public_key, std::nullopt, bytes("b"), m1b);
  auto ra = responder::read(agent, std::nullopt, m1a);
  auto rb = responder::read(agent, std::nullopt, m1b);
  REQUIRE(ra);
  REQUIRE(rb);
  traffic_keys ka, kb;
  (void)ra->finish(bytes("A"), ka);
  const auto m2b = rb->finish(bytes("B"), kb);
  traffic_keys k;
  auto got = ia.finish(m2b, k);
  REQUIRE_FALSE(got);
  CHECK_THAT(got.error(), Catch::StartsWith(agent_unproven));
  // The right initiator accepts it.
  auto good = ib.finish(m2b, k);
  REQUIRE(good);
  CHECK(k.send == kb.recv);
}

TEST_CASE("low-order ephemeral keys are refused", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1;
  auto i = initiator::start(agent.public_key, std::nullopt, bytes("x"), m1);
  auto bad1 = m1;
  std::fill(bad1.begin() + 1, bad1.begin() + 33, std::byte{0});  // u = 0: a point of order 2
  auto r = responder::read(agent, std::nullopt, bad1);
  REQUIRE_FALSE(r);
  CHECK(r.error() == "malformed e2e handshake message 1: invalid ephemeral key");

  auto ok = responder::read(agent, std::nullopt, m1);
  REQUIRE(ok);
  traffic_keys rk;
  auto m2 = ok->finish(bytes("y"), rk);
  std::fill(m2.begin(), m2.begin() + 32, std::byte{0});
  m2[0] = std::byte{1};  // u = 1: a point of order 4
  traffic_keys k;
  auto got = i.finish(m2, k);
  REQUIRE_FALSE(got);
  CHECK(got.error() == "malformed e2e handshake message 2: invalid ephemeral key");
}

TEST_CASE("a low-order pinned agent key is refused by the initiator", "[e2e][handshake]") {
  std::vector<std::byte> m1;
  CHECK_THROWS_AS(initiator::start(key{}, std::nullopt, bytes("x"), m1), std::invalid_argument);
}

TEST_CASE("handshake objects are single-use and movable", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1;
  auto i0 = initiator::start(agent.public_key, std::nullopt, bytes("x"), m1);
  initiator i = std::move(i0);
  auto r0 = responder::read(agent, std::nullopt, m1);
  REQUIRE(r0);
  responder r = std::move(*r0);
  CHECK(str(r.payload()) == "x");
  traffic_keys rk, ik;
  const auto m2 = r.finish(bytes("y"), rk);
  CHECK_THROWS_AS(r.finish(bytes("y"), rk), std::logic_error);
  traffic_keys dummy;
  CHECK_THROWS_AS(i0.finish(m2, dummy), std::logic_error);  // moved-from
  auto got = i.finish(m2, ik);
  REQUIRE(got);
  CHECK(ik.send == rk.recv);
  CHECK_THROWS_AS(i.finish(m2, ik), std::logic_error);
}

TEST_CASE("a failed finish spends the initiator", "[e2e][handshake]") {
  const auto agent = generate_keypair();
  std::vector<std::byte> m1;
  auto i = initiator::start(agent.public_key, std::nullopt, bytes("x"), m1);
  traffic_keys k;
  REQUIRE_FALSE(i.finish(std::vector<std::byte>(10), k));
  CHECK_THROWS_AS(i.finish(std::vector<std::byte>(10), k), std::logic_error);
}
