// The record layer: XChaCha20-Poly1305 records with counter nonces (e2e.hpp has the format;
// docs/security.md the reasons). No allocation per record: seal and open write straight
// into the caller's buffers.
#include <stdexcept>
#include <utility>
#include <string>

#include "e2e/detail.hpp"
#include "e2e/e2e.hpp"

namespace nl::e2e {

using detail::u8;

namespace {

static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == record_tag_size);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24);
static_assert(max_record_plaintext < (1u << 24), "the length must fit the u24 header field");

constexpr unsigned kind_data = 0;
constexpr unsigned kind_final = 1;

// nonce = sequence number as u64 little-endian, then 16 zero bytes.
void make_nonce(unsigned char (&nonce)[24], std::uint64_t seq) noexcept {
  for (int i = 0; i < 8; ++i) {
    nonce[i] = static_cast<unsigned char>(seq >> (8 * i));
  }
  for (int i = 8; i < 24; ++i) {
    nonce[i] = 0;
  }
}

}  // namespace

// ---- sealer -------------------------------------------------------------------------------

sealer::sealer(const key& k) : key_(k) { detail::ensure_sodium(); }

sealer::~sealer() { sodium_memzero(key_.data(), key_.size()); }

sealer::sealer(sealer&& other) noexcept
    : key_(other.key_), seq_(other.seq_), finished_(other.finished_), aead_(std::move(other.aead_)) {
  sodium_memzero(other.key_.data(), other.key_.size());
  other.finished_ = true;  // a moved-from sealer must not seal with the wiped key
}

sealer& sealer::operator=(sealer&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    seq_ = other.seq_;
    finished_ = other.finished_;
    aead_ = std::move(other.aead_);
    sodium_memzero(other.key_.data(), other.key_.size());
    other.finished_ = true;
  }
  return *this;
}

bool sealer::finished() const noexcept { return finished_; }

std::size_t sealer::seal(std::span<const std::byte> plain, bool final, std::span<std::byte> out) {
  if (finished_) {
    throw std::logic_error("e2e sealer: seal called after the final record");
  }
  if (plain.size() > max_record_plaintext) {
    throw std::invalid_argument("e2e sealer: record plaintext of " + std::to_string(plain.size()) +
                                " bytes exceeds the limit of " + std::to_string(max_record_plaintext));
  }
  const std::size_t total = plain.size() + record_overhead;
  if (out.size() < total) {
    throw std::invalid_argument("e2e sealer: output buffer of " + std::to_string(out.size()) + " bytes, " +
                                std::to_string(total) + " needed");
  }
  if (seq_ == UINT64_MAX) {  // unreachable in practice (2^64 records), but never wrap the nonce
    throw std::logic_error("e2e sealer: record counter exhausted");
  }
  const auto len = static_cast<std::uint32_t>(plain.size());
  unsigned char* const o = u8(out.data());
  o[0] = static_cast<unsigned char>(final ? kind_final : kind_data);
  o[1] = static_cast<unsigned char>(len >> 16);
  o[2] = static_cast<unsigned char>(len >> 8);
  o[3] = static_cast<unsigned char>(len);
  unsigned char nonce[24];
  make_nonce(nonce, seq_);
  aead_.encrypt(o + record_header_size, o + record_header_size + len, u8(plain.data()), len, o, record_header_size,
                nonce, u8(key_.data()));
  ++seq_;
  finished_ = final;
  return total;
}

// ---- opener -------------------------------------------------------------------------------

opener::opener(const key& k) : key_(k) { detail::ensure_sodium(); }

opener::~opener() { sodium_memzero(key_.data(), key_.size()); }

opener::opener(opener&& other) noexcept
    : key_(other.key_),
      seq_(other.seq_),
      needed_(other.needed_),
      finished_(other.finished_),
      failed_(other.failed_),
      aead_(std::move(other.aead_)) {
  sodium_memzero(other.key_.data(), other.key_.size());
  other.failed_ = true;  // a moved-from opener authenticates nothing
}

opener& opener::operator=(opener&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    seq_ = other.seq_;
    needed_ = other.needed_;
    finished_ = other.finished_;
    failed_ = other.failed_;
    aead_ = std::move(other.aead_);
    sodium_memzero(other.key_.data(), other.key_.size());
    other.failed_ = true;
  }
  return *this;
}

std::size_t opener::needed() const noexcept { return needed_; }

bool opener::finished() const noexcept { return finished_; }

open_status opener::open(std::span<const std::byte> in, std::span<std::byte> out, opened_record& r) {
  r.consumed = 0;
  r.plain_size = 0;
  r.final = false;
  r.error.clear();
  if (failed_) {
    r.error = "the e2e record stream already failed";
    return open_status::error;
  }
  if (finished_) {
    failed_ = true;
    r.error = "e2e data after the final record";
    return open_status::error;
  }
  if (in.size() < record_header_size) {
    return open_status::incomplete;
  }
  const unsigned char* const p = u8(in.data());
  const unsigned kind = p[0];
  const std::size_t len = (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (kind != kind_data && kind != kind_final) {
    failed_ = true;
    r.error = "e2e record " + std::to_string(seq_) + " has an unknown kind " + std::to_string(kind) +
              " (modified or not an e2e stream)";
    return open_status::error;
  }
  if (len > max_record_plaintext) {
    failed_ = true;
    r.error = "e2e record " + std::to_string(seq_) + " announces " + std::to_string(len) +
              " bytes, more than the limit of " + std::to_string(max_record_plaintext);
    return open_status::error;
  }
  needed_ = len + record_overhead;
  if (in.size() < needed_) {
    return open_status::incomplete;
  }
  if (out.size() < len) {
    throw std::invalid_argument("e2e opener: output buffer of " + std::to_string(out.size()) + " bytes, " +
                                std::to_string(len) + " needed");
  }
  unsigned char nonce[24];
  make_nonce(nonce, seq_);
  // `out` may be the ciphertext itself (in + 4); on failure it is zeroed.
  if (!aead_.decrypt(u8(out.data()), p + record_header_size, len, p + record_header_size + len, p,
                     record_header_size, nonce, u8(key_.data()))) {
    failed_ = true;
    needed_ = 0;
    r.error = "e2e record " + std::to_string(seq_) +
              " failed authentication (data modified, replayed, reordered or dropped on the way)";
    return open_status::error;
  }
  r.consumed = needed_;
  r.plain_size = len;
  r.final = kind == kind_final;
  needed_ = 0;
  ++seq_;
  finished_ = r.final;
  return open_status::ok;
}

}  // namespace nl::e2e
