// The record layer: XChaCha20-Poly1305 records with counter nonces (e2e.hpp has the format;
// docs/security.md the reasons). No allocation per record: seal and open write straight
// into the caller's buffers.
#include <algorithm>
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
      aead_(std::move(other.aead_)),
      partial_(other.partial_),
      header_(other.header_),
      partial_len_(other.partial_len_),
      partial_done_(other.partial_done_) {
  sodium_memzero(other.key_.data(), other.key_.size());
  other.failed_ = true;  // a moved-from opener authenticates nothing
  other.partial_ = false;
}

opener& opener::operator=(opener&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    seq_ = other.seq_;
    needed_ = other.needed_;
    finished_ = other.finished_;
    failed_ = other.failed_;
    aead_ = std::move(other.aead_);
    partial_ = other.partial_;
    header_ = other.header_;
    partial_len_ = other.partial_len_;
    partial_done_ = other.partial_done_;
    other.partial_ = false;
    sodium_memzero(other.key_.data(), other.key_.size());
    other.failed_ = true;
  }
  return *this;
}

std::size_t opener::needed() const noexcept { return needed_; }

bool opener::finished() const noexcept { return finished_; }

open_status opener::fail(opened_record& r, std::string why) {
  failed_ = true;
  needed_ = 0;
  partial_ = false;
  r.error = std::move(why);
  return open_status::error;
}

open_status opener::check_header(const unsigned char* p, opened_record& r) {
  r.consumed = 0;
  r.plain_size = 0;
  r.final = false;
  r.error.clear();
  if (failed_) {
    r.error = "the e2e record stream already failed";
    return open_status::error;
  }
  if (finished_) {
    return fail(r, "e2e data after the final record");
  }
  if (!p) {
    return open_status::incomplete;
  }
  const unsigned kind = p[0];
  const std::size_t len = (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (kind != kind_data && kind != kind_final) {
    return fail(r, "e2e record " + std::to_string(seq_) + " has an unknown kind " + std::to_string(kind) +
                       " (modified or not an e2e stream)");
  }
  if (len > max_record_plaintext) {
    return fail(r, "e2e record " + std::to_string(seq_) + " announces " + std::to_string(len) +
                       " bytes, more than the limit of " + std::to_string(max_record_plaintext));
  }
  needed_ = len + record_overhead;
  r.plain_size = len;
  r.final = kind == kind_final;
  return open_status::ok;
}

namespace {

std::string authentication_failure(std::uint64_t seq) {
  return "e2e record " + std::to_string(seq) +
         " failed authentication (data modified, replayed, reordered or dropped on the way)";
}

}  // namespace

open_status opener::open(std::span<const std::byte> in, std::span<std::byte> out, opened_record& r) {
  if (partial_) {
    throw std::logic_error("e2e opener: open() while a record is being opened in pieces");
  }
  const unsigned char* const p = u8(in.data());
  if (auto st = check_header(in.size() < record_header_size ? nullptr : p, r); st != open_status::ok) {
    return st;
  }
  const std::size_t len = r.plain_size;
  const bool final = r.final;
  r.plain_size = 0;
  r.final = false;
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
    return fail(r, authentication_failure(seq_));
  }
  r.consumed = needed_;
  r.plain_size = len;
  r.final = final;
  needed_ = 0;
  ++seq_;
  finished_ = final;
  return open_status::ok;
}

open_status opener::begin(std::span<const std::byte> header, opened_record& r) {
  if (partial_) {
    throw std::logic_error("e2e opener: begin() while a record is being opened");
  }
  if (header.size() != record_header_size) {
    throw std::invalid_argument("e2e opener: begin() takes the " + std::to_string(record_header_size) +
                                "-byte record header");
  }
  const unsigned char* const p = u8(header.data());
  if (auto st = check_header(p, r); st != open_status::ok) {
    return st;
  }
  std::copy(p, p + record_header_size, header_.begin());
  partial_ = true;
  partial_len_ = r.plain_size;
  partial_done_ = 0;
  unsigned char nonce[24];
  make_nonce(nonce, seq_);
  aead_.start(header_.data(), header_.size(), nonce, u8(key_.data()));
  return open_status::ok;
}

void opener::update(std::span<const std::byte> ciphertext, std::byte* out) {
  if (!partial_ || ciphertext.size() > partial_len_ - partial_done_) {
    throw std::logic_error("e2e opener: update() outside a record or past its end");
  }
  aead_.update(u8(out), u8(ciphertext.data()), ciphertext.size());
  partial_done_ += ciphertext.size();
}

open_status opener::finish(std::span<const std::byte> tag, std::span<std::byte> plain, opened_record& r) {
  if (!partial_ || partial_done_ != partial_len_ || tag.size() != record_tag_size || plain.size() != partial_len_) {
    throw std::logic_error("e2e opener: finish() before the whole ciphertext, or with a wrong tag or output size");
  }
  r.consumed = 0;
  r.plain_size = 0;
  r.final = false;
  r.error.clear();
  unsigned char nonce[24];
  make_nonce(nonce, seq_);
  partial_ = false;
  if (!aead_.finish(u8(plain.data()), plain.size(), u8(tag.data()), header_.data(), header_.size(), nonce,
                    u8(key_.data()))) {
    return fail(r, authentication_failure(seq_));
  }
  r.consumed = needed_;
  r.plain_size = partial_len_;
  r.final = header_[0] == kind_final;
  needed_ = 0;
  ++seq_;
  finished_ = r.final;
  return open_status::ok;
}

}  // namespace nl::e2e
