// Internal helpers shared by the e2e translation units (not part of the public API).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <sodium.h>

#include "e2e/e2e.hpp"

namespace nl::e2e::detail {

// sodium_init() exactly once per process (a function-local static is initialised
// thread-safely); every entry point that touches libsodium calls this first.
void ensure_sodium();

inline unsigned char* u8(std::byte* p) noexcept { return reinterpret_cast<unsigned char*>(p); }
inline const unsigned char* u8(const std::byte* p) noexcept { return reinterpret_cast<const unsigned char*>(p); }
inline const unsigned char* u8(const char* p) noexcept { return reinterpret_cast<const unsigned char*>(p); }

// Incremental BLAKE2b-256 over a concatenation of parts, optionally keyed (32-byte key).
class blake2b {
public:
  explicit blake2b(const key* k = nullptr) noexcept {
    crypto_generichash_init(&st_, k ? u8(k->data()) : nullptr, k ? k->size() : 0, key_size);
  }
  ~blake2b() { sodium_memzero(&st_, sizeof st_); }
  blake2b(const blake2b&) = delete;
  blake2b& operator=(const blake2b&) = delete;

  blake2b& update(std::span<const std::byte> part) noexcept {
    crypto_generichash_update(&st_, u8(part.data()), part.size());
    return *this;
  }
  blake2b& update(std::string_view part) noexcept {
    crypto_generichash_update(&st_, u8(part.data()), part.size());
    return *this;
  }
  void final(key& out) noexcept { crypto_generichash_final(&st_, u8(out.data()), out.size()); }

private:
  crypto_generichash_state st_;
};

}  // namespace nl::e2e::detail
