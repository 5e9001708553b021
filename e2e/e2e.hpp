// End-to-end protection of one nl stream between a client and an agent, so that the
// gateway relaying it learns only which agent, sizes and timing. libsodium only; no I/O
// except the key file helpers; the handshake and record functions are pure and fuzzable.
// docs/security.md ("End-to-end encryption") is the normative description of the
// construction and the reasons for it; keep the two in step.
//
// Roles: the agent holds a long-term X25519 key pair (its "static" key); the client pins
// the agent's public key. Per stream the client (initiator) sends message 1 inside the
// stream's OPEN, the agent (responder) answers with message 2 inside its OPEN_RESULT
// (a Noise-NK-style pattern: e, es / e, ee, optionally mixing a pre-shared key derived from
// a passphrase with argon2id). Each message carries an encrypted payload (the client's
// holds the destination, the agent's holds its verdict). After message 2 both sides hold
// two traffic keys (one per direction), and the stream's bytes are a sequence of records:
// XChaCha20-Poly1305 with counter nonces, the record header as associated data, and a
// final record that marks the end, so that modified, dropped, duplicated, reordered and
// truncated data are all detected.
//
// Thread-safety: plain values; each sealer/opener belongs to one stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "e2e/xchacha.hpp"

namespace nl::e2e {

inline constexpr std::size_t key_size = 32;
using key = std::array<std::byte, key_size>;

// ---- long-term keys -------------------------------------------------------------------

struct static_keypair {
  key public_key{};
  key secret_key{};
};

static_keypair generate_keypair();
// The public key of `secret_key` (X25519 base-point multiplication).
key public_key_of(const key& secret_key);

// Text forms. A public key is written as "nl1:" followed by unpadded base64url of the 32
// bytes (47 characters in all); decode accepts exactly that form (surrounding whitespace
// trimmed) and returns nullopt otherwise.
std::string encode_public_key(const key& public_key);
std::optional<key> decode_public_key(std::string_view text);
// A short, human-comparable fingerprint of a public key: the first 10 bytes of
// BLAKE2b-256("nl e2e fingerprint" || key) in lower-case hex, grouped by 4 with ':'
// ("3f2a:91c0:7b1e:44d2:a0b9"). Used in messages and printed by `nl-agent key`.
std::string fingerprint(const key& public_key);

// The agent's key file: one line "nl1-secret:" + base64url(secret key). Created on first use
// with mode 0600 (O_CREAT|O_EXCL, parent directory created 0700 if missing). Refuses a file
// readable or writable by group or others ("chmod 600 FILE"), a malformed file, or a
// symlink. Error strings are complete sentences naming the file and what to do.
std::expected<static_keypair, std::string> load_or_create_keypair(const std::string& path);
std::expected<static_keypair, std::string> load_keypair(const std::string& path);  // must exist

// Optional pre-shared key from a passphrase, mixed into the handshake so that both the
// pinned key and the phrase are needed. argon2id (crypto_pwhash, OPSLIMIT_MODERATE,
// MEMLIMIT_MODERATE) with the salt = first 16 bytes of BLAKE2b("nl e2e psk" || agent
// public key). Slow on purpose (~0.5-1 s): derive once at start-up, not per stream.
// Throws std::runtime_error when libsodium runs out of memory.
key derive_psk(std::string_view passphrase, const key& agent_public_key);

// ---- handshake --------------------------------------------------------------------------

// Largest payload either handshake message may carry; messages must fit in an OPEN frame.
inline constexpr std::size_t max_handshake_payload = 1024;

// Keys for the record layer after a successful handshake.
struct traffic_keys {
  key send{};  // our direction
  key recv{};  // the peer's direction
};

// Initiator (client) state between message 1 and message 2. Opaque; holds secrets and wipes
// them (sodium_memzero) on destruction. Movable, not copyable.
class initiator {
public:
  initiator(initiator&&) noexcept;
  initiator& operator=(initiator&&) noexcept;
  initiator(const initiator&) = delete;
  initiator& operator=(const initiator&) = delete;
  ~initiator();

  // Builds message 1 for `agent_public_key` carrying `payload` (<= max_handshake_payload).
  // `psk` when the client was configured with a passphrase. Throws std::invalid_argument on
  // an oversized payload, or when agent_public_key is a low-order point (e.g. all zeros)
  // that would make the shared secret a constant.
  static initiator start(const key& agent_public_key, const std::optional<key>& psk,
                         std::span<const std::byte> payload, std::vector<std::byte>& message1);
  // Same with a given ephemeral secret key: for test vectors only.
  static initiator start_with_ephemeral(const key& agent_public_key, const std::optional<key>& psk,
                                        std::span<const std::byte> payload, const key& ephemeral_secret,
                                        std::vector<std::byte>& message1);

  // Reads message 2. On success returns the agent's payload and fills `keys`. Errors:
  // malformed message, or authentication failure ("the agent could not prove it holds the
  // pinned key"). An initiator is single-use: finish() may be called once.
  std::expected<std::vector<std::byte>, std::string> finish(std::span<const std::byte> message2,
                                                             traffic_keys& keys);

private:
  initiator();
  struct state;
  std::array<std::byte, 256> raw_{};  // state lives here (no heap), wiped in the destructor
};

// Responder (agent) side of message 1: the client's payload and what is needed to answer.
class responder {
public:
  responder(responder&&) noexcept;
  responder& operator=(responder&&) noexcept;
  responder(const responder&) = delete;
  responder& operator=(const responder&) = delete;
  ~responder();

  // Reads message 1 with the agent's static key pair. Errors: malformed message, or
  // "cannot decrypt: the client pinned a different key or passphrase for this agent".
  static std::expected<responder, std::string> read(const static_keypair& self, const std::optional<key>& psk,
                                                    std::span<const std::byte> message1);

  const std::vector<std::byte>& payload() const noexcept;  // the client's payload

  // Builds message 2 carrying `payload` (<= max_handshake_payload) and fills `keys`.
  // Single-use. Throws std::invalid_argument on an oversized payload.
  std::vector<std::byte> finish(std::span<const std::byte> payload, traffic_keys& keys);
  // Same with a given ephemeral secret key: for test vectors only.
  std::vector<std::byte> finish_with_ephemeral(std::span<const std::byte> payload, const key& ephemeral_secret,
                                               traffic_keys& keys);

private:
  responder();
  std::vector<std::byte> payload_;
  std::array<std::byte, 256> raw_{};
};

// ---- record layer -------------------------------------------------------------------------
//
// record = header (4 bytes) || ciphertext (plaintext length + 16-byte tag)
// header = u8 kind (0 = data, 1 = final) || u24 big-endian plaintext length
// nonce  = 24 bytes: the record's sequence number as u64 little-endian, then zeros
//          (each direction has its own key, so a (key, nonce) pair is never reused)
// AD     = the 4 header bytes
// A final record ends the direction (it may carry data); nothing may follow it. End of
// input without a final record is truncation.

inline constexpr std::size_t record_header_size = 4;
inline constexpr std::size_t record_tag_size = 16;
inline constexpr std::size_t record_overhead = record_header_size + record_tag_size;
inline constexpr std::size_t max_record_plaintext = 64 * 1024;

class sealer {
public:
  explicit sealer(const key& k);
  ~sealer();  // wipes the key
  sealer(sealer&&) noexcept;
  sealer& operator=(sealer&&) noexcept;
  sealer(const sealer&) = delete;
  sealer& operator=(const sealer&) = delete;

  // Writes one record protecting `plain` (<= max_record_plaintext bytes) into `out`, which
  // must have room for plain.size() + record_overhead bytes; returns the bytes written.
  // `plain` and `out` may not overlap. Throws std::logic_error when called after a final
  // record, std::invalid_argument on a size violation.
  std::size_t seal(std::span<const std::byte> plain, bool final, std::span<std::byte> out);
  bool finished() const noexcept;  // a final record was sealed

private:
  key key_{};
  std::uint64_t seq_ = 0;
  bool finished_ = false;
  detail::xchacha20poly1305 aead_;
};

enum class open_status { ok, incomplete, error };

struct opened_record {
  std::size_t consumed = 0;    // bytes of input the record took (header + ciphertext)
  std::size_t plain_size = 0;  // plaintext bytes written to `out`
  bool final = false;          // this was the final record
  std::string error;           // when open_status::error: what was wrong, for the reset message
};

class opener {
public:
  explicit opener(const key& k);
  ~opener();
  opener(opener&&) noexcept;
  opener& operator=(opener&&) noexcept;
  opener(const opener&) = delete;
  opener& operator=(const opener&) = delete;

  // Looks at the front of `in`. incomplete: not a whole record yet (needed() says how many
  // bytes the record at the front takes once its header is known). ok: the record was
  // authenticated and its plaintext written to `out` (room for needed() - record_overhead
  // bytes required; `out` may alias `in` + record_header_size, i.e. in-place decryption).
  // error: bad header, oversized record, authentication failure (modified, replayed,
  // reordered or dropped data), or data after the final record. After an error or a final
  // record, every call returns error. An `out` too small for a whole record is the
  // caller's bug: std::invalid_argument, and the stream is not failed.
  open_status open(std::span<const std::byte> in, std::span<std::byte> out, opened_record& r);

  // Incremental opening, for a record that arrives in pieces (a relay then decrypts each
  // piece as it comes instead of first joining the record): begin() with the 4 header
  // bytes (ok: r.plain_size is the record's plaintext length; error: as open()), update()
  // with each consecutive piece of the ciphertext, whose plaintext goes to `out` (the
  // matching place of the record's output), then finish() with the 16-byte tag and the
  // whole output. The output is authentic only once finish() returned ok (r.final and
  // r.plain_size set; r.consumed is the whole record); on error it has been zeroed. Calls
  // out of this order, or open() in between, are the caller's bug: std::logic_error.
  open_status begin(std::span<const std::byte> header, opened_record& r);
  void update(std::span<const std::byte> ciphertext, std::byte* out);
  open_status finish(std::span<const std::byte> tag, std::span<std::byte> plain, opened_record& r);
  bool in_record() const noexcept { return partial_; }  // between begin() and finish()

  std::size_t needed() const noexcept;  // 0 until a header has been seen
  bool finished() const noexcept;       // the final record was opened

private:
  key key_{};
  std::uint64_t seq_ = 0;
  // The header, kind and length checks shared by open() and begin(); sets needed_.
  open_status check_header(const unsigned char* p, opened_record& r);
  open_status fail(opened_record& r, std::string why);

  std::size_t needed_ = 0;
  bool finished_ = false;
  bool failed_ = false;
  detail::xchacha20poly1305 aead_;
  // begin() .. finish()
  bool partial_ = false;
  std::array<unsigned char, record_header_size> header_{};
  std::size_t partial_len_ = 0;   // the record's ciphertext length
  std::size_t partial_done_ = 0;  // ciphertext bytes given to update() so far
};

}  // namespace nl::e2e
