// XChaCha20-Poly1305 (IETF, detached tag) for the record layer, computed as its definition
// says: subkey = HChaCha20(key, nonce[0..16]), then ChaCha20-Poly1305 (RFC 8439) with the
// subkey and the 12-byte nonce 0^4 || nonce[16..24]. HChaCha20 comes from libsodium; the
// ChaCha20-Poly1305 pass from OpenSSL, whose AVX-512 code is about twice as fast as
// libsodium's on the machines nl targets (docs/performance.md). The output is byte for byte
// libsodium's crypto_aead_xchacha20poly1305_ietf_*_detached (tests/unit/e2e checks it on
// every size class). Without an OpenSSL ChaCha20-Poly1305 (a FIPS-only provider) libsodium
// does the whole computation. Internal to e2e/.
// Thread-safety: one object per direction, used by one thread.
#pragma once

#include <cstddef>

extern "C" {
struct evp_cipher_ctx_st;
}

namespace nl::e2e::detail {

class xchacha20poly1305 {
public:
  static constexpr std::size_t key_size = 32;
  static constexpr std::size_t nonce_size = 24;
  static constexpr std::size_t tag_size = 16;

  xchacha20poly1305() noexcept = default;
  // One that never uses OpenSSL: the fallback path, for tests.
  static xchacha20poly1305 libsodium_only() noexcept {
    xchacha20poly1305 x;
    x.tried_ = true;
    return x;
  }
  ~xchacha20poly1305();
  xchacha20poly1305(xchacha20poly1305&& other) noexcept : ctx_(other.ctx_), tried_(other.tried_) {
    other.ctx_ = nullptr;
    other.tried_ = false;
  }
  xchacha20poly1305& operator=(xchacha20poly1305&& other) noexcept;
  xchacha20poly1305(const xchacha20poly1305&) = delete;
  xchacha20poly1305& operator=(const xchacha20poly1305&) = delete;

  // ct (len bytes) and tag from plain; ct may equal plain (in place), not overlap it otherwise.
  void encrypt(unsigned char* ct, unsigned char* tag, const unsigned char* plain, std::size_t len,
               const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce, const unsigned char* key);
  // false when the tag does not verify; `plain` is then zeroed. plain may equal ct.
  [[nodiscard]] bool decrypt(unsigned char* plain, const unsigned char* ct, std::size_t len, const unsigned char* tag,
                             const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce,
                             const unsigned char* key);

  // Incremental decryption, for a ciphertext that arrives in pieces: start(), then
  // update() for each consecutive piece (its plaintext goes to `out`; with libsodium as the
  // fallback it is the ciphertext, still to be decrypted), then finish() with the whole
  // output (`len` bytes, as given to the updates, in order), the tag, and the same AD, nonce
  // and key as start(). Only after finish() returned true is the output authentic
  // plaintext; on false it has been zeroed.
  void start(const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce, const unsigned char* key);
  void update(unsigned char* out, const unsigned char* ct, std::size_t n);
  [[nodiscard]] bool finish(unsigned char* out, std::size_t len, const unsigned char* tag, const unsigned char* ad,
                            std::size_t ad_len, const unsigned char* nonce, const unsigned char* key);

private:
  // One OpenSSL context per object, created on first use with the cipher set for the
  // direction; null when OpenSSL has no ChaCha20-Poly1305 (then libsodium is used).
  bool ready(bool encrypting);

  evp_cipher_ctx_st* ctx_ = nullptr;
  bool tried_ = false;
};

}  // namespace nl::e2e::detail
