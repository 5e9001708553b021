// Test vectors (d) for the handshake and the record layer, from fixed secrets. The values
// are pinned below, and tests/unit/e2e/vectors.py recomputes them independently (PyNaCl,
// following docs/security.md) from the output of the hidden "[.print-vectors]" case:
//   unit_e2e "[.print-vectors]"   prints lines "vector NAME HEX"
#include <catch2/catch.hpp>

#include <iostream>
#include <map>
#include <optional>

#include "e2e/e2e.hpp"
#include "tests/unit/e2e/util.hpp"

using namespace nl::e2e;
using nl::e2e::test::bytes;
using nl::e2e::test::hex;
using nl::e2e::test::seal;

namespace {

using vectors = std::vector<std::pair<std::string, std::string>>;

// One handshake and its first records with every secret fixed.
void handshake_vectors(const std::string& prefix, const std::optional<key>& psk, vectors& out) {
  static_keypair agent;
  agent.secret_key = test::counting_key(0x00);
  agent.public_key = public_key_of(agent.secret_key);
  const key e_i = test::counting_key(0x20);
  const key e_r = test::counting_key(0x40);

  std::vector<std::byte> m1;
  auto i = initiator::start_with_ephemeral(agent.public_key, psk, bytes("tcp example.com:22"), e_i, m1);
  auto r = responder::read(agent, psk, m1);
  REQUIRE(r.has_value());
  REQUIRE(test::str(r->payload()) == "tcp example.com:22");
  traffic_keys agent_keys, client_keys;
  const auto m2 = r->finish_with_ephemeral(bytes("ok"), e_r, agent_keys);
  auto p2 = i.finish(m2, client_keys);
  REQUIRE(p2.has_value());
  REQUIRE(test::str(*p2) == "ok");
  REQUIRE(client_keys.send == agent_keys.recv);
  REQUIRE(client_keys.recv == agent_keys.send);

  sealer client_out(client_keys.send);
  sealer agent_out(agent_keys.send);
  const auto c0 = seal(client_out, bytes("hello"));
  const auto c1 = seal(client_out, {}, true);
  const auto a0 = seal(agent_out, bytes("bye"), true);

  // Both directions open with the peer's keys.
  opener agent_in(agent_keys.recv);
  opener client_in(client_keys.recv);
  const auto d = test::drain(agent_in, test::concat({c0, c1}));
  REQUIRE(d.finished);
  REQUIRE(test::str(d.plain) == "hello");
  const auto e = test::drain(client_in, a0);
  REQUIRE(e.finished);
  REQUIRE(test::str(e.plain) == "bye");

  out.emplace_back(prefix + "message1", hex(m1));
  out.emplace_back(prefix + "message2", hex(m2));
  out.emplace_back(prefix + "key_i2r", hex(client_keys.send));
  out.emplace_back(prefix + "key_r2i", hex(client_keys.recv));
  out.emplace_back(prefix + "record_i2r_0", hex(c0));
  out.emplace_back(prefix + "record_i2r_1", hex(c1));
  out.emplace_back(prefix + "record_r2i_0", hex(a0));
}

vectors compute() {
  vectors v;
  const key agent_public = public_key_of(test::counting_key(0x00));
  v.emplace_back("agent_public", hex(agent_public));
  v.emplace_back("agent_public_text", hex(bytes(encode_public_key(agent_public))));
  v.emplace_back("agent_fingerprint", hex(bytes(fingerprint(agent_public))));
  handshake_vectors("nk_", std::nullopt, v);
  handshake_vectors("nkpsk0_", test::counting_key(0x60), v);
  // argon2id with 256 MiB: about a second.
  v.emplace_back("passphrase_psk", hex(derive_psk("correct horse battery staple", agent_public)));
  return v;
}

// Pinned from a run of this implementation and confirmed by vectors.py.
const std::map<std::string, std::string> pinned = {
    {"agent_public",
     "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f"},
    {"agent_public_text",
     "6e6c313a6a304446726261504a574a4b35624955366e5a3662736c4e677030396531346130627076506945344b4638"},
    {"agent_fingerprint",
     "326234303a316361303a336135363a616663303a38643231"},
    {"nk_message1",
     "01358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254c4d5df7f37ec1c4bac654a8225cdf611c28f9a404723a3b57281f79716ab1b8c4104"},
    {"nk_message2",
     "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51ab3f0ecb27956def38eb86ec820a77283281b"},
    {"nk_key_i2r",
     "2c50fa7a8a69e83b6b00d7afb375840071db1292dfe9e688f19504eb134cfc3d"},
    {"nk_key_r2i",
     "13886e9c2c729fc57e39c488ccc8bd30ce994326c983199c191e6b850782d96e"},
    {"nk_record_i2r_0",
     "000000053d832a54dbb1735dc6a6e7c645fc56a5704a4a8cc6"},
    {"nk_record_i2r_1",
     "01000000d4f6a4b54e2a039611ce7f3b29349dc7"},
    {"nk_record_r2i_0",
     "01000003e7b2e6605cac705e09851da3faa4affb2f696f"},
    {"nkpsk0_message1",
     "01358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd1662546d6c81de2e653e046b6e32f4a27ff0d417b4b300da9e527804cc78ad293f55f85d88"},
    {"nkpsk0_message2",
     "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a54c233b9dfccb30443ac3f2b40b5bbfa53a7"},
    {"nkpsk0_key_i2r",
     "e24428f5167c9825edb4a3cfa4ae22047ff8d9f1215e854c48c8471ecb393ee7"},
    {"nkpsk0_key_r2i",
     "4124bfd731c62e42783fa7531101a7ad33008394f14467f996314de3a371fc5a"},
    {"nkpsk0_record_i2r_0",
     "00000005119718fc04039e82dc09c0e7810db41ca2c7e15c6d"},
    {"nkpsk0_record_i2r_1",
     "010000008aab987942d20860a3a4ef4428a31212"},
    {"nkpsk0_record_r2i_0",
     "010000031cfba1502c19a26f2716b77f64eab00c61a426"},
    {"passphrase_psk",
     "a20ad29ad55e2bb13595622f8a86246d6b22be5c8afeebada4ecd7d165e3626b"},
};

}  // namespace

TEST_CASE("handshake and record test vectors", "[e2e][vectors]") {
  const auto v = compute();
  REQUIRE(v.size() == pinned.size());
  for (const auto& [name, value] : v) {
    INFO(name);
    REQUIRE(pinned.count(name) == 1);
    CHECK(value == pinned.at(name));
  }
}

TEST_CASE("text forms of the vector agent key", "[e2e][vectors]") {
  const key agent_public = public_key_of(test::counting_key(0x00));
  CHECK(encode_public_key(agent_public) == "nl1:j0DFrbaPJWJK5bIU6nZ6bslNgp09e14a0bpvPiE4KF8");
  CHECK(fingerprint(agent_public) == "2b40:1ca0:3a56:afc0:8d21");
  CHECK(decode_public_key("nl1:j0DFrbaPJWJK5bIU6nZ6bslNgp09e14a0bpvPiE4KF8") == agent_public);
}

TEST_CASE("print the test vectors for vectors.py", "[.print-vectors]") {
  for (const auto& [name, value] : compute()) {
    std::cout << "vector " << name << ' ' << value << '\n';
  }
  std::cout.flush();
}
