#include "proto/token.hpp"

#include <catch2/catch.hpp>

#include <sodium.h>

#include <set>
#include <stdexcept>

using namespace nl::proto::token;

namespace {

std::vector<std::byte> kat_secret() {
  std::vector<std::byte> s;
  for (int i = 0; i < 32; ++i) s.push_back(static_cast<std::byte>(i));
  return s;
}

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.pop_back();
  return out;
}

// An HS256 token over arbitrary header and payload text, for claims the issuer refuses to make.
std::string sign(std::string_view header, std::string_view payload, std::span<const std::byte> key) {
  auto input = b64url(header) + "." + b64url(payload);
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

constexpr std::string_view hs256_header = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::int64_t t0 = 1700000000;

claims kat_claims() {
  claims c;
  c.tenant = "acme";
  c.name = "home";
  c.r = role::agent;
  c.iat = t0;
  c.exp = t0 + 3600;
  c.jti = "00112233445566778899aabbccddeeff";
  return c;
}

// Computed independently with Python's hmac/hashlib/base64 over
// {"alg":"HS256","typ":"JWT"} and the sorted, compact kat_claims() payload, key 00..1f.
constexpr std::string_view kat_token =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE3MDAwMDM2MDAsImlhdCI6MTcwMDAwMDAwMCwianRpIjoiMDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZm"
    "YiLCJyb2xlIjoiYWdlbnQiLCJzdWIiOiJob21lIiwidGVuIjoiYWNtZSJ9."
    "TkFzwUuDBBhG_tRp1q5cOhfBlXFpuzzezOznCq0Bj34";

// Python as well, with spaces, another key order, nbf and a policy object.
constexpr std::string_view kat_token_loose =
    "eyAidHlwIjogIkpXVCIsICJhbGciOiAiSFMyNTYiIH0."
    "eyJzdWIiOiAibGFwdG9wIiwgInRlbiI6ICJhY21lIiwgInJvbGUiOiAiY2xpZW50IiwgImV4cCI6IDE3MDAwMDM2MDAsICJuYm"
    "YiOiAxNjk5OTk5MDAwLCAicG9sIjogeyJhbGxvdyI6IFsiMTAuMC4wLjAvOCJdLCAicG9ydHMiOiAiMjIifX0."
    "HRRrdF1i8wAMOODHvgO7B1x4om8PDo_LA-CKSOSGeWo";

// Python's `cryptography` Ed25519 with seed 0x20..0x3f over the kat_claims() payload.
constexpr std::string_view kat_eddsa_token =
    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE3MDAwMDM2MDAsImlhdCI6MTcwMDAwMDAwMCwianRpIjoiMDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZm"
    "YiLCJyb2xlIjoiYWdlbnQiLCJzdWIiOiJob21lIiwidGVuIjoiYWNtZSJ9."
    "HI11RIm569hqWl_EFzWdJ30rlb4FApfUOU2TrRQGXKZce-HwO77ND_WMUqO3hur-CXtvhlLodh_-_VLqcHEpCQ";
constexpr std::string_view kat_eddsa_public_hex = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7";

std::string reason_of(const std::expected<claims, std::string>& r) { return r ? "ok" : r.error(); }

}  // namespace

TEST_CASE("HS256 known-answer vector", "[token]") {
  auto secret = kat_secret();
  CHECK(issue(kat_claims(), secret) == kat_token);
  auto v = verify(kat_token, secret, t0 + 100);
  REQUIRE(v);
  CHECK(v->tenant == "acme");
  CHECK(v->name == "home");
  CHECK(v->r == role::agent);
  CHECK(v->iat == t0);
  CHECK(v->exp == t0 + 3600);
  CHECK(v->nbf == 0);
  CHECK(v->jti == "00112233445566778899aabbccddeeff");
  CHECK(v->policy_json.empty());
}

TEST_CASE("HS256 vector from another encoder", "[token]") {
  auto v = verify(kat_token_loose, kat_secret(), t0);
  REQUIRE(v);
  CHECK(v->tenant == "acme");
  CHECK(v->name == "laptop");
  CHECK(v->r == role::client);
  CHECK(v->iat == 0);
  CHECK(v->nbf == 1699999000);
  CHECK(v->jti.empty());
  CHECK(v->policy_json == R"({"allow":["10.0.0.0/8"],"ports":"22"})");
}

TEST_CASE("issue and verify round trip", "[token]") {
  auto secret = generate_secret();
  claims c;
  c.tenant = "tenant-1.prod_x";
  c.name = std::string(64, 'n');
  c.r = role::client;
  c.iat = t0;
  c.nbf = t0 - 5;
  c.exp = t0 + 30 * 86400;
  c.jti = new_jti();
  c.policy_json = R"({"deny":[{"cidr":"10.0.0.0/8"}],"note":"caf\u00e9"})";
  auto tok = issue(c, secret);
  CHECK(tok.find('=') == std::string::npos);
  auto v = verify(tok, secret, t0);
  REQUIRE(v);
  CHECK(v->tenant == c.tenant);
  CHECK(v->name == c.name);
  CHECK(v->r == c.r);
  CHECK(v->iat == c.iat);
  CHECK(v->nbf == c.nbf);
  CHECK(v->exp == c.exp);
  CHECK(v->jti == c.jti);
  CHECK(v->policy_json == "{\"deny\":[{\"cidr\":\"10.0.0.0/8\"}],\"note\":\"caf\xc3\xa9\"}");
  // A file's trailing newline and surrounding blanks do not matter.
  CHECK(verify("  " + tok + "\n", secret, t0));
}

TEST_CASE("tampering is detected", "[token]") {
  auto secret = kat_secret();
  std::string tok(kat_token);
  auto dot1 = tok.find('.');
  auto dot2 = tok.find('.', dot1 + 1);
  SECTION("payload swapped for another valid payload") {
    auto c = kat_claims();
    c.r = role::client;
    auto other = issue(c, secret);
    auto forged = tok.substr(0, dot1 + 1) + other.substr(other.find('.') + 1, other.rfind('.') - other.find('.') - 1) +
                  tok.substr(dot2);
    CHECK(reason_of(verify(forged, secret, t0)) == "bad signature");
  }
  SECTION("one payload character changed") {
    auto t = tok;
    t[dot1 + 5] = t[dot1 + 5] == 'A' ? 'B' : 'A';
    CHECK(reason_of(verify(t, secret, t0)) == "bad signature");
  }
  SECTION("signature changed") {
    auto t = tok;
    t[dot2 + 1] = t[dot2 + 1] == 'A' ? 'B' : 'A';
    CHECK(reason_of(verify(t, secret, t0)) == "bad signature");
  }
  SECTION("signature truncated or missing") {
    CHECK(reason_of(verify(tok.substr(0, tok.size() - 3), secret, t0)) == "bad signature");
    CHECK(reason_of(verify(tok.substr(0, dot2 + 1), secret, t0)) == "bad signature");
  }
  SECTION("signature with non-canonical trailing bits") {
    auto t = tok;
    t.back() = '5';  // '4' ends the canonical encoding; '5' sets a padding bit
    CHECK(reason_of(verify(t, secret, t0)) == "malformed token");
  }
  SECTION("wrong secret") {
    auto other = kat_secret();
    other[31] = std::byte{0xff};
    CHECK(reason_of(verify(tok, other, t0)) == "bad signature");
    CHECK(reason_of(verify(tok, generate_secret(), t0)) == "bad signature");
  }
}

TEST_CASE("validity window with 30 s skew", "[token]") {
  auto secret = kat_secret();
  auto c = kat_claims();
  c.nbf = t0 + 1000;
  auto tok = issue(c, secret);
  CHECK(reason_of(verify(tok, secret, c.exp)) == "ok");
  CHECK(reason_of(verify(tok, secret, c.exp + 30)) == "ok");
  CHECK(reason_of(verify(tok, secret, c.exp + 31)) == "token expired");
  CHECK(reason_of(verify(tok, secret, c.nbf - 30)) == "ok");
  CHECK(reason_of(verify(tok, secret, c.nbf - 31)) == "token not yet valid");
  CHECK(reason_of(verify(kat_token, secret, t0 + 3600 + 31)) == "token expired");
}

TEST_CASE("algorithms other than the configured ones are refused", "[token]") {
  auto secret = kat_secret();
  auto payload = R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600})";
  SECTION("alg none, with or without a signature") {
    auto none = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(payload) + ".";
    CHECK(reason_of(verify(none, secret, t0)) == "unsupported algorithm");
    auto signed_none = sign(R"({"alg":"none"})", payload, secret);
    CHECK(reason_of(verify(signed_none, secret, t0)) == "unsupported algorithm");
  }
  SECTION("other names") {
    for (auto alg : {"HS512", "RS256", "hs256", "ES256", "", "EdDSA"}) {
      CAPTURE(alg);
      auto tok = sign(std::string(R"({"alg":")") + alg + "\"}", payload, secret);
      CHECK(reason_of(verify(tok, secret, t0)) == "unsupported algorithm");
    }
  }
  SECTION("HS256 without a configured secret") {
    auto ed = generate_ed25519_keypair();
    CHECK(reason_of(verify(kat_token, verify_keys{{}, ed.public_key}, t0)) == "unsupported algorithm");
  }
  SECTION("the header must be an object with a string alg and no crit") {
    for (std::string h : {R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":null})", R"(["HS256"])", "\"HS256\"",
                          "{\"alg\":\"HS256\"", R"({"alg":"HS256","crit":["exp"]})", ""}) {
      CAPTURE(h);
      CHECK(reason_of(verify(sign(h, payload, secret), secret, t0)) == "malformed token");
    }
  }
}

TEST_CASE("garbage and oversized input", "[token]") {
  auto secret = kat_secret();
  for (std::string t : {"", " ", "\n", "\t \r\n"}) {
    CHECK(reason_of(verify(t, secret, t0)) == "missing token");
  }
  for (std::string t : std::vector<std::string>{"abc", "a.b", "a.b.c.d", "..", "a..c", ".b.c", "a.b.c", "e30.e30.=", "e30=.e30.x",
                        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "\xe2\x82\xac.e30.x", std::string("e30.\0.x", 7),
                        "eyJhbGciOiJIUzI1NiJ9.e30+.x", "eyJhbGciOiJIUzI1NiJ9.e30/.x"}) {
    CAPTURE(t);
    CHECK(reason_of(verify(t, secret, t0)) == "malformed token");
  }
  CHECK(reason_of(verify(std::string(max_token_size + 1, 'a'), secret, t0)) == "malformed token");
  CHECK(reason_of(verify(std::string(1 << 20, '.'), secret, t0)) == "malformed token");

  // A correctly signed token just over the limit is refused before parsing.
  auto c = kat_claims();
  c.policy_json = R"({"pad":")" + std::string(6200, 'x') + "\"}";
  auto big = issue(c, secret);
  REQUIRE(big.size() > max_token_size);
  CHECK(reason_of(verify(big, secret, t0)) == "malformed token");
}

TEST_CASE("payload must be a JSON object of bounded depth", "[token]") {
  auto secret = kat_secret();
  for (std::string p : {"[]", "null", "42", "\"x\"", "{", R"({"ten":"acme",})", "{\"ten\":\"\xff\"}", ""}) {
    CAPTURE(p);
    CHECK(reason_of(verify(sign(hs256_header, p, secret), secret, t0)) == "malformed token");
  }
  std::string deep = R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"pol":{"a":)";
  deep += std::string(40, '[') + std::string(40, ']') + "}}";
  CHECK(reason_of(verify(sign(hs256_header, deep, secret), secret, t0)) == "malformed token");
  // Brackets inside strings do not count towards the depth.
  std::string brackets = R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"pol":{"a":")" +
                         std::string(100, '[') + "\\\"" + std::string(100, '{') + "\"}}";
  CHECK(reason_of(verify(sign(hs256_header, brackets, secret), secret, t0)) == "ok");
}

TEST_CASE("claims are validated", "[token]") {
  auto secret = kat_secret();
  std::vector<std::string> bad = {
      R"({"sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":1,"sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":"","sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":")" + std::string(65, 'a') + R"(","sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":"ac/me","sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":"ac me","sub":"home","role":"agent","exp":1700003600})",
      R"({"ten":"acme","role":"agent","exp":1700003600})",
      R"({"ten":"acme","sub":null,"role":"agent","exp":1700003600})",
      R"({"ten":"acme","sub":"h\u0000","role":"agent","exp":1700003600})",
      R"({"ten":"acme","sub":"home","exp":1700003600})",
      R"({"ten":"acme","sub":"home","role":"admin","exp":1700003600})",
      R"({"ten":"acme","sub":"home","role":"Agent","exp":1700003600})",
      R"({"ten":"acme","sub":"home","role":["agent"],"exp":1700003600})",
      R"({"ten":"acme","sub":"home","role":"agent"})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":"1700003600"})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600.5})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":18446744073709551615})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"iat":"now"})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"nbf":1.0})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"jti":7})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"jti":")" + std::string(129, 'j') + "\"}",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"pol":[]})",
      R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"pol":"allow all"})",
  };
  for (const auto& p : bad) {
    CAPTURE(p);
    CHECK(reason_of(verify(sign(hs256_header, p, secret), secret, t0)) == "invalid claims");
  }
  // Unknown claims are ignored; extreme but well-typed times only fail the time checks.
  CHECK(reason_of(verify(sign(hs256_header,
                              R"({"ten":"acme","sub":"home","role":"agent","exp":1700003600,"aud":"x","iss":1})",
                              secret),
                         secret, t0)) == "ok");
  CHECK(reason_of(verify(sign(hs256_header,
                              R"({"ten":"acme","sub":"home","role":"agent","exp":-9223372036854775808})", secret),
                         secret, t0)) == "token expired");
  CHECK(reason_of(verify(sign(hs256_header,
                              R"({"ten":"acme","sub":"home","role":"agent","exp":9223372036854775807,)"
                              R"("nbf":9223372036854775807})",
                              secret),
                         secret, t0)) == "token not yet valid");
}

TEST_CASE("issue refuses claims that could not verify", "[token]") {
  auto secret = kat_secret();
  auto c = kat_claims();
  CHECK_THROWS_AS(issue(c, {}), std::invalid_argument);
  auto bad_tenant = c;
  bad_tenant.tenant = "a/b";
  CHECK_THROWS_AS(issue(bad_tenant, secret), std::invalid_argument);
  auto no_name = c;
  no_name.name.clear();
  CHECK_THROWS_AS(issue(no_name, secret), std::invalid_argument);
  auto no_exp = c;
  no_exp.exp = 0;
  CHECK_THROWS_AS(issue(no_exp, secret), std::invalid_argument);
  for (auto pol : {"[]", "{", "\"x\"", "{\"a\":1} x"}) {
    auto p = c;
    p.policy_json = pol;
    CHECK_THROWS_AS(issue(p, secret), std::invalid_argument);
  }
}

TEST_CASE("EdDSA", "[token]") {
  SECTION("known-answer vector") {
    std::array<unsigned char, 32> seed{};
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(32 + i);
    std::vector<std::byte> pk(32), sk(64);
    crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()), reinterpret_cast<unsigned char*>(sk.data()),
                             seed.data());
    std::array<char, 65> hex{};
    sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(pk.data()), pk.size());
    REQUIRE(std::string_view(hex.data(), 64) == kat_eddsa_public_hex);
    CHECK(issue_eddsa(kat_claims(), sk) == kat_eddsa_token);
    auto v = verify(kat_eddsa_token, verify_keys{{}, pk}, t0);
    REQUIRE(v);
    CHECK(v->name == "home");
    // An HS256-only verifier does not accept it, whatever the secret.
    CHECK(reason_of(verify(kat_eddsa_token, kat_secret(), t0)) == "unsupported algorithm");
  }
  SECTION("round trip and wrong key") {
    auto kp = generate_ed25519_keypair();
    auto other = generate_ed25519_keypair();
    REQUIRE(kp.public_key.size() == ed25519_public_key_size);
    REQUIRE(kp.secret_key.size() == ed25519_secret_key_size);
    auto tok = issue_eddsa(kat_claims(), kp.secret_key);
    auto secret = generate_secret();
    CHECK(reason_of(verify(tok, verify_keys{secret, kp.public_key}, t0)) == "ok");
    CHECK(reason_of(verify(tok, verify_keys{secret, other.public_key}, t0)) == "bad signature");
    CHECK(reason_of(verify(tok, verify_keys{{}, std::span(kp.public_key).first(31)}, t0)) ==
          "unsupported algorithm");
    // Both algorithms enabled: an HS256 token still needs the secret.
    auto hs = issue(kat_claims(), secret);
    CHECK(reason_of(verify(hs, verify_keys{secret, kp.public_key}, t0)) == "ok");
    CHECK_THROWS_AS(issue_eddsa(kat_claims(), kp.public_key), std::invalid_argument);
  }
}

TEST_CASE("secrets", "[token]") {
  auto s1 = generate_secret();
  auto s2 = generate_secret();
  CHECK(s1.size() == secret_size);
  CHECK(s1 != s2);
  auto text = encode_secret(s1);
  CHECK(text.size() == 43);
  CHECK(text.find_first_of("+/=\n") == std::string::npos);
  CHECK(decode_secret(text) == s1);
  CHECK(decode_secret(text + "\n") == s1);
  CHECK(decode_secret("\t" + text + " \r\n") == s1);
  CHECK(encode_secret(kat_secret()) == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");

  // Standard base64 (e.g. `openssl rand -base64 32`) and padding are accepted too.
  std::vector<std::byte> odd = {std::byte{0xfb}, std::byte{0xff}, std::byte{0xfe}};
  for (int i = 0; i < 29; ++i) odd.push_back(static_cast<std::byte>(i));
  CHECK(decode_secret("+//+AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=\n") == odd);
  CHECK(decode_secret("-__-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=") == odd);
  CHECK(decode_secret("-__-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw") == odd);

  CHECK_FALSE(decode_secret(""));
  CHECK_FALSE(decode_secret("\n"));
  CHECK_FALSE(decode_secret("AAECAwQFBgcICQoLDA0ODw"));  // 16 bytes
  CHECK_FALSE(decode_secret("-_/+AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw"));  // mixed alphabets
  CHECK_FALSE(decode_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 x"));
  CHECK_FALSE(decode_secret("not base64 at all, not at all, not at all!!"));
}

TEST_CASE("jti and identifiers", "[token]") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto j = new_jti();
    REQUIRE(j.size() == 32);
    CHECK(j.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(j);
  }
  CHECK(seen.size() == 100);

  CHECK(valid_identifier("a"));
  CHECK(valid_identifier("Home-Server_2.lan"));
  CHECK(valid_identifier(std::string(64, 'x')));
  CHECK_FALSE(valid_identifier(""));
  CHECK_FALSE(valid_identifier(std::string(65, 'x')));
  CHECK_FALSE(valid_identifier("a/b"));
  CHECK_FALSE(valid_identifier("a b"));
  CHECK_FALSE(valid_identifier("caf\xc3\xa9"));
  CHECK_FALSE(valid_identifier("a:b"));

  CHECK(to_string(role::agent) == "agent");
  CHECK(to_string(role::client) == "client");
  CHECK(parse_role("agent") == role::agent);
  CHECK(parse_role("client") == role::client);
  CHECK_FALSE(parse_role("gateway"));
  CHECK_FALSE(parse_role(""));
}

TEST_CASE("groups claim", "[token]") {
  auto secret = kat_secret();
  SECTION("round trip, order kept, absent when empty") {
    auto c = kat_claims();
    c.r = role::client;
    c.groups = {"ops", "dev.team", "on-call_2"};
    auto v = verify(issue(c, secret), secret, t0);
    REQUIRE(v);
    CHECK(v->groups == c.groups);
    auto eddsa = generate_ed25519_keypair();
    auto e = verify(issue_eddsa(c, eddsa.secret_key), verify_keys{{}, eddsa.public_key}, t0);
    REQUIRE(e);
    CHECK(e->groups == c.groups);
    auto none = verify(issue(kat_claims(), secret), secret, t0);
    REQUIRE(none);
    CHECK(none->groups.empty());
    // No "grp" in the payload when there are no groups: the known-answer token stays.
    CHECK(issue(kat_claims(), secret) == kat_token);
  }
  SECTION("issue refuses bad groups") {
    for (std::vector<std::string> bad : {std::vector<std::string>{""}, {"a b"}, {"ops", "ops"}, {"grp:x"},
                                         {std::string(65, 'g')}}) {
      auto c = kat_claims();
      c.groups = bad;
      CHECK_THROWS_AS(issue(c, secret), std::invalid_argument);
    }
    auto c = kat_claims();
    for (int i = 0; i < 65; ++i) c.groups.push_back("g" + std::to_string(i));
    CHECK_THROWS_AS(issue(c, secret), std::invalid_argument);
    c.groups.pop_back();
    CHECK(verify(issue(c, secret), secret, t0)->groups.size() == 64);
  }
  SECTION("verify refuses malformed grp") {
    std::string many = "[";
    for (int i = 0; i < 65; ++i) many += (i ? ",\"g" : "\"g") + std::to_string(i) + "\"";
    many += "]";
    for (std::string grp : {std::string(R"("ops")"), std::string(R"([1])"), std::string(R"([null])"),
                            std::string(R"(["ops","ops"])"), std::string(R"(["o/ps"])"),
                            std::string(R"([""])"), std::string(R"({"ops":1})"), std::string(R"([["ops"]])"), many}) {
      auto payload = R"({"ten":"acme","sub":"laptop","role":"client","exp":1700003600,"grp":)" + grp + "}";
      CAPTURE(payload);
      CHECK(reason_of(verify(sign(hs256_header, payload, secret), secret, t0)) == "invalid claims");
    }
    auto ok = R"({"ten":"acme","sub":"laptop","role":"client","exp":1700003600,"grp":[]})";
    auto v = verify(sign(hs256_header, ok, secret), secret, t0);
    REQUIRE(v);
    CHECK(v->groups.empty());
  }
}
