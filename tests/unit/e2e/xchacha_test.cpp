// The record layer's XChaCha20-Poly1305 (HChaCha20 from libsodium + OpenSSL's
// ChaCha20-Poly1305) must be libsodium's crypto_aead_xchacha20poly1305_ietf, byte for byte,
// in both directions, at every size class the vector code paths care about.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include <sodium.h>

#include "e2e/xchacha.hpp"

using nl::e2e::detail::xchacha20poly1305;

namespace {

std::vector<unsigned char> random_bytes(std::size_t n) {
  std::vector<unsigned char> v(n);
  randombytes_buf(v.data(), v.size());
  return v;
}

constexpr std::size_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 511, 512, 1023, 4096,
                                 16383, 16384, 16385, 65535, 65536};

}  // namespace

TEST_CASE("xchacha20poly1305 seals exactly as libsodium does", "[e2e][xchacha]") {
  REQUIRE(sodium_init() >= 0);
  auto aead = GENERATE(as<bool>{}, true, false) ? xchacha20poly1305() : xchacha20poly1305::libsodium_only();
  for (std::size_t len : sizes) {
    for (std::size_t ad_len : {std::size_t{0}, std::size_t{4}, std::size_t{37}}) {
      CAPTURE(len, ad_len);
      auto key = random_bytes(32), nonce = random_bytes(24), plain = random_bytes(len), ad = random_bytes(ad_len);
      std::vector<unsigned char> ct(len + 1), tag(16), ref_ct(len + 1), ref_tag(16);
      aead.encrypt(ct.data(), tag.data(), plain.data(), len, ad.data(), ad_len, nonce.data(), key.data());
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ref_ct.data(), ref_tag.data(), nullptr, plain.data(), len,
                                                          ad.data(), ad_len, nullptr, nonce.data(), key.data());
      REQUIRE(ct == ref_ct);
      REQUIRE(tag == ref_tag);
    }
  }
}

TEST_CASE("xchacha20poly1305 opens libsodium's output and refuses anything modified", "[e2e][xchacha]") {
  REQUIRE(sodium_init() >= 0);
  auto aead = GENERATE(as<bool>{}, true, false) ? xchacha20poly1305() : xchacha20poly1305::libsodium_only();
  for (std::size_t len : sizes) {
    CAPTURE(len);
    auto key = random_bytes(32), nonce = random_bytes(24), plain = random_bytes(len), ad = random_bytes(4);
    std::vector<unsigned char> ct(len + 1), tag(16);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct.data(), tag.data(), nullptr, plain.data(), len, ad.data(),
                                                        ad.size(), nullptr, nonce.data(), key.data());
    std::vector<unsigned char> out(len + 1, 0xee);
    REQUIRE(aead.decrypt(out.data(), ct.data(), len, tag.data(), ad.data(), ad.size(), nonce.data(), key.data()));
    REQUIRE(std::equal(plain.begin(), plain.end(), out.begin()));

    // in place
    auto inplace = ct;
    REQUIRE(aead.decrypt(inplace.data(), inplace.data(), len, tag.data(), ad.data(), ad.size(), nonce.data(),
                         key.data()));
    REQUIRE(std::equal(plain.begin(), plain.end(), inplace.begin()));

    // a flipped bit in the ciphertext, the tag, the AD or the nonce: refused, output zeroed
    auto check_refused = [&](std::vector<unsigned char> c, std::vector<unsigned char> t, std::vector<unsigned char> a,
                             std::vector<unsigned char> n) {
      std::vector<unsigned char> o(len + 1, 0xee);
      REQUIRE_FALSE(aead.decrypt(o.data(), c.data(), len, t.data(), a.data(), a.size(), n.data(), key.data()));
      for (std::size_t i = 0; i < len; ++i) {
        REQUIRE(o[i] == 0);
      }
    };
    if (len > 0) {
      auto c = ct;
      c[len / 2] ^= 0x10;
      check_refused(c, tag, ad, nonce);
    }
    auto t = tag;
    t[15] ^= 1;
    check_refused(ct, t, ad, nonce);
    auto a = ad;
    a[0] ^= 0x80;
    check_refused(ct, tag, a, nonce);
    auto n = nonce;
    n[20] ^= 4;  // a byte of the part that is not fed to HChaCha20
    check_refused(ct, tag, ad, n);
    n = nonce;
    n[3] ^= 4;  // and one that is
    check_refused(ct, tag, ad, n);
  }
}

TEST_CASE("xchacha20poly1305 keeps working after a refused record and after a move", "[e2e][xchacha]") {
  REQUIRE(sodium_init() >= 0);
  auto key = random_bytes(32), nonce = random_bytes(24), plain = random_bytes(1000);
  std::vector<unsigned char> ct(1000), tag(16), out(1000);
  xchacha20poly1305 sealer;
  sealer.encrypt(ct.data(), tag.data(), plain.data(), plain.size(), nullptr, 0, nonce.data(), key.data());
  xchacha20poly1305 opener;
  auto bad = tag;
  bad[0] ^= 1;
  REQUIRE_FALSE(opener.decrypt(out.data(), ct.data(), ct.size(), bad.data(), nullptr, 0, nonce.data(), key.data()));
  xchacha20poly1305 moved(std::move(opener));
  REQUIRE(moved.decrypt(out.data(), ct.data(), ct.size(), tag.data(), nullptr, 0, nonce.data(), key.data()));
  REQUIRE(out == plain);
}

TEST_CASE("xchacha20poly1305 opens in pieces, with OpenSSL and with the libsodium fallback", "[e2e][xchacha]") {
  REQUIRE(sodium_init() >= 0);
  const bool openssl = GENERATE(true, false);
  CAPTURE(openssl);
  auto aead = openssl ? xchacha20poly1305() : xchacha20poly1305::libsodium_only();
  for (std::size_t len : sizes) {
    for (std::size_t piece : {std::size_t{1}, std::size_t{13}, std::size_t{64}, std::size_t{4096}}) {
      CAPTURE(len, piece);
      auto key = random_bytes(32), nonce = random_bytes(24), plain = random_bytes(len), ad = random_bytes(4);
      std::vector<unsigned char> ct(len + 1), tag(16);
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct.data(), tag.data(), nullptr, plain.data(), len,
                                                          ad.data(), ad.size(), nullptr, nonce.data(), key.data());
      for (bool tamper : {false, true}) {
        std::vector<unsigned char> out(len + 1, 0xee);
        auto t = tag;
        if (tamper) t[7] ^= 0x20;
        aead.start(ad.data(), ad.size(), nonce.data(), key.data());
        for (std::size_t done = 0; done < len; done += std::min(piece, len - done)) {
          aead.update(out.data() + done, ct.data() + done, std::min(piece, len - done));
        }
        const bool ok = aead.finish(out.data(), len, t.data(), ad.data(), ad.size(), nonce.data(), key.data());
        REQUIRE(ok == !tamper);
        if (ok) {
          REQUIRE(std::equal(plain.begin(), plain.end(), out.begin()));
        } else {
          REQUIRE(std::all_of(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(len),
                              [](unsigned char c) { return c == 0; }));
        }
      }
    }
  }
}
