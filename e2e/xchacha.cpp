#include "e2e/xchacha.hpp"

#include <climits>
#include <cstring>
#include <stdexcept>

#include <openssl/evp.h>
#include <sodium.h>

namespace nl::e2e::detail {

namespace {

// The cipher, fetched once per process (an explicit fetch: passing EVP_chacha20_poly1305()
// to every init would look it up again each time). Null without a provider that has it.
const EVP_CIPHER* chacha20_poly1305() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  return cipher;
}

// The ChaCha20-Poly1305 subkey and 12-byte nonce for one XChaCha20 nonce.
struct derived {
  unsigned char subkey[32];
  unsigned char nonce[12] = {};
  derived(const unsigned char* xnonce, const unsigned char* key) {
    crypto_core_hchacha20(subkey, xnonce, key, nullptr);
    for (int i = 0; i < 8; ++i) {
      nonce[4 + i] = xnonce[16 + i];
    }
  }
  ~derived() { sodium_memzero(subkey, sizeof subkey); }
  derived(const derived&) = delete;
  derived& operator=(const derived&) = delete;
};

int as_int(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw std::invalid_argument("xchacha20poly1305: input too large");
  }
  return static_cast<int>(n);
}

}  // namespace

xchacha20poly1305::~xchacha20poly1305() { EVP_CIPHER_CTX_free(ctx_); }

xchacha20poly1305& xchacha20poly1305::operator=(xchacha20poly1305&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = other.ctx_;
    tried_ = other.tried_;
    other.ctx_ = nullptr;
    other.tried_ = false;
  }
  return *this;
}

bool xchacha20poly1305::ready(bool encrypting) {
  if (!tried_) {
    tried_ = true;
    if (const auto* cipher = chacha20_poly1305()) {
      ctx_ = EVP_CIPHER_CTX_new();
      if (ctx_ && EVP_CipherInit_ex(ctx_, cipher, nullptr, nullptr, nullptr, encrypting ? 1 : 0) != 1) {
        EVP_CIPHER_CTX_free(ctx_);
        ctx_ = nullptr;
      }
    }
  }
  return ctx_ != nullptr;
}

void xchacha20poly1305::encrypt(unsigned char* ct, unsigned char* tag, const unsigned char* plain, std::size_t len,
                                const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce,
                                const unsigned char* key) {
  if (!ready(true)) {
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct, tag, nullptr, plain, len, ad, ad_len, nullptr, nonce, key);
    return;
  }
  derived d(nonce, key);
  int n = 0;
  unsigned char fin[16];  // ChaCha20-Poly1305 writes nothing at the end
  if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, d.subkey, d.nonce) != 1 ||
      (ad_len > 0 && EVP_EncryptUpdate(ctx_, nullptr, &n, ad, as_int(ad_len)) != 1) ||
      (len > 0 && EVP_EncryptUpdate(ctx_, ct, &n, plain, as_int(len)) != 1) || EVP_EncryptFinal_ex(ctx_, fin, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_size), tag) != 1) {
    // Not reachable with valid arguments; never let a half-sealed record out.
    throw std::runtime_error("xchacha20poly1305: OpenSSL encryption failed");
  }
}

bool xchacha20poly1305::decrypt(unsigned char* plain, const unsigned char* ct, std::size_t len, const unsigned char* tag,
                                const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce,
                                const unsigned char* key) {
  if (!ready(false)) {
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, nullptr, ct, len, tag, ad, ad_len, nonce, key) ==
           0;
  }
  derived d(nonce, key);
  int n = 0;
  unsigned char fin[16];
  // OpenSSL writes the plaintext before it checks the tag: on failure it is wiped here,
  // and the caller never uses it.
  bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, d.subkey, d.nonce) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_size),
                                const_cast<unsigned char*>(tag)) == 1 &&
            (ad_len == 0 || EVP_DecryptUpdate(ctx_, nullptr, &n, ad, as_int(ad_len)) == 1) &&
            (len == 0 || EVP_DecryptUpdate(ctx_, plain, &n, ct, as_int(len)) == 1) &&
            EVP_DecryptFinal_ex(ctx_, fin, &n) == 1;
  if (!ok && len > 0) {
    sodium_memzero(plain, len);
  }
  return ok;
}

void xchacha20poly1305::start(const unsigned char* ad, std::size_t ad_len, const unsigned char* nonce,
                              const unsigned char* key) {
  if (!ready(false)) {
    return;
  }
  derived d(nonce, key);
  int n = 0;
  if (EVP_DecryptInit_ex(ctx_, nullptr, nullptr, d.subkey, d.nonce) != 1 ||
      (ad_len > 0 && EVP_DecryptUpdate(ctx_, nullptr, &n, ad, as_int(ad_len)) != 1)) {
    throw std::runtime_error("xchacha20poly1305: OpenSSL decryption setup failed");
  }
}

void xchacha20poly1305::update(unsigned char* out, const unsigned char* ct, std::size_t n) {
  if (n == 0) {
    return;
  }
  if (!ctx_) {
    std::memmove(out, ct, n);  // libsodium decrypts the whole record in finish()
    return;
  }
  int w = 0;
  if (EVP_DecryptUpdate(ctx_, out, &w, ct, as_int(n)) != 1) {
    throw std::runtime_error("xchacha20poly1305: OpenSSL decryption failed");
  }
}

bool xchacha20poly1305::finish(unsigned char* out, std::size_t len, const unsigned char* tag, const unsigned char* ad,
                               std::size_t ad_len, const unsigned char* nonce, const unsigned char* key) {
  bool ok;
  if (!ctx_) {
    ok = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, nullptr, out, len, tag, ad, ad_len, nonce, key) ==
         0;
  } else {
    int n = 0;
    unsigned char fin[16];
    ok = EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag_size),
                             const_cast<unsigned char*>(tag)) == 1 &&
         EVP_DecryptFinal_ex(ctx_, fin, &n) == 1;
  }
  if (!ok && len > 0) {
    sodium_memzero(out, len);
  }
  return ok;
}

}  // namespace nl::e2e::detail
