// The per-stream handshake: a Noise-NK-style pattern (optionally NKpsk0) built from
// libsodium primitives. docs/security.md, "End-to-end encryption", is the normative
// description; every step below names the line of that description it implements.
//
//   h  = BLAKE2b-256(protocol_name); ck = h
//   h  = H(h || rs)                                   agent's static public key, first
//   [psk] ck = MixKey(ck, psk)                        wrong phrase => wrong k1
//   -> e:  h = H(h || e.pub)
//   -> es: ck, k1 = MixKey(ck, DH(e, rs))
//          c1 = AEAD(k1, 0, ad = h, payload1); h = H(h || c1)
//   <- e:  h = H(h || re.pub)
//   <- ee: ck, k2 = MixKey(ck, DH(e, re))             k2 depends on es and ee
//          c2 = AEAD(k2, 0, ad = h, payload2); h = H(h || c2)
//   split: k_i2r = BLAKE2b-256(key = ck, "...initiator->responder" || h), k_r2i likewise
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "e2e/detail.hpp"
#include "e2e/e2e.hpp"

namespace nl::e2e {

using detail::u8;

namespace {

constexpr std::byte handshake_version{1};
constexpr std::string_view name_nk = "nl-e2e/1 Noise_NK_25519_XChaChaPoly_BLAKE2b";
constexpr std::string_view name_nkpsk0 = "nl-e2e/1 Noise_NKpsk0_25519_XChaChaPoly_BLAKE2b";
constexpr std::string_view label_ck = "nl-e2e/1 ck";
constexpr std::string_view label_k1 = "nl-e2e/1 k1";
constexpr std::string_view label_k2 = "nl-e2e/1 k2";
constexpr std::string_view label_i2r = "nl-e2e/1 initiator->responder";
constexpr std::string_view label_r2i = "nl-e2e/1 responder->initiator";

constexpr std::size_t tag_size = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(tag_size == 16);
constexpr std::size_t message1_min = 1 + key_size + tag_size;  // 49
constexpr std::size_t message1_max = message1_min + max_handshake_payload;
constexpr std::size_t message2_min = key_size + tag_size;  // 48
constexpr std::size_t message2_max = message2_min + max_handshake_payload;

const std::string_view bad_message1_key = "cannot decrypt: the client pinned a different key or passphrase for this agent";
const std::string_view bad_message2_key =
    "the agent could not prove it holds the pinned key (handshake message 2 failed authentication); "
    "compare the agent's fingerprint (nl-agent key) with the key this client pins";

template <class T>
void wipe(T& v) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  sodium_memzero(&v, sizeof v);
}

// The symmetric half of the handshake state (Noise's h and ck).
struct symmetric {
  key ck;
  key h;

  void init(bool with_psk) noexcept {
    detail::blake2b().update(with_psk ? name_nkpsk0 : name_nk).final(h);
    ck = h;
  }
  void mix_hash(std::span<const std::byte> data) noexcept {
    detail::blake2b().update(h).update(data).final(h);
  }
  // prk = BLAKE2b-256(key = ck, input); ck = BLAKE2b-256(key = prk, label_ck);
  // *k = BLAKE2b-256(key = prk, label) when asked for.
  void mix_key(std::span<const std::byte> input, std::string_view label, key* k) noexcept {
    key prk;
    detail::blake2b(&ck).update(input).final(prk);
    detail::blake2b(&prk).update(label_ck).final(ck);
    if (k != nullptr) {
      detail::blake2b(&prk).update(label).final(*k);
    }
    wipe(prk);
  }
  void split(key& i2r, key& r2i) const noexcept {
    detail::blake2b(&ck).update(label_i2r).update(h).final(i2r);
    detail::blake2b(&ck).update(label_r2i).update(h).final(r2i);
  }
};

// Initiator state between message 1 and message 2 (lives in initiator::raw_).
struct istate {
  symmetric sym;
  key e_secret;
  bool live;
};
// Responder state between message 1 and message 2 (lives in responder::raw_).
struct rstate {
  symmetric sym;
  key e_remote;  // the initiator's ephemeral public key
  bool live;
};

template <class T>
T& state_in(std::array<std::byte, 256>& raw) noexcept {
  static_assert(sizeof(T) <= 256 && alignof(T) == 1 && std::is_trivially_copyable_v<T>);
  return *std::launder(reinterpret_cast<T*>(raw.data()));
}

// X25519; false when the result is all zeros (a low-order public key).
[[nodiscard]] bool dh(key& out, const key& secret, std::span<const std::byte> pub) noexcept {
  return crypto_scalarmult(u8(out.data()), u8(secret.data()), u8(pub.data())) == 0;
}

const unsigned char zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {};

// c = AEAD(k, nonce 0, ad = h, plain) into out (plain.size() + 16 bytes). Each handshake
// key encrypts exactly one message, so the zero nonce is never reused with it.
void seal(const key& k, const key& ad, std::span<const std::byte> plain, std::byte* out) noexcept {
  crypto_aead_xchacha20poly1305_ietf_encrypt(u8(out), nullptr, u8(plain.data()), plain.size(), u8(ad.data()), ad.size(),
                                             nullptr, zero_nonce, u8(k.data()));
}

[[nodiscard]] bool open(const key& k, const key& ad, std::span<const std::byte> c, std::vector<std::byte>& plain) {
  plain.resize(c.size() - tag_size);
  unsigned long long n = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(u8(plain.data()), &n, nullptr, u8(c.data()), c.size(), u8(ad.data()),
                                                 ad.size(), zero_nonce, u8(k.data())) != 0) {
    plain.clear();
    return false;
  }
  return true;
}

void check_payload(std::span<const std::byte> payload, const char* who) {
  if (payload.size() > max_handshake_payload) {
    throw std::invalid_argument(std::string("e2e ") + who + " payload of " + std::to_string(payload.size()) +
                                " bytes exceeds the limit of " + std::to_string(max_handshake_payload));
  }
}

}  // namespace

// ---- initiator ----------------------------------------------------------------------------

initiator::initiator() = default;

initiator::initiator(initiator&& other) noexcept : raw_(other.raw_) { sodium_memzero(other.raw_.data(), other.raw_.size()); }

initiator& initiator::operator=(initiator&& other) noexcept {
  if (this != &other) {
    raw_ = other.raw_;
    sodium_memzero(other.raw_.data(), other.raw_.size());
  }
  return *this;
}

initiator::~initiator() { sodium_memzero(raw_.data(), raw_.size()); }

initiator initiator::start(const key& agent_public_key, const std::optional<key>& psk,
                           std::span<const std::byte> payload, std::vector<std::byte>& message1) {
  detail::ensure_sodium();
  key e{};
  randombytes_buf(e.data(), e.size());
  try {
    auto i = start_with_ephemeral(agent_public_key, psk, payload, e, message1);
    wipe(e);
    return i;
  } catch (...) {
    wipe(e);
    throw;
  }
}

initiator initiator::start_with_ephemeral(const key& agent_public_key, const std::optional<key>& psk,
                                          std::span<const std::byte> payload, const key& ephemeral_secret,
                                          std::vector<std::byte>& message1) {
  detail::ensure_sodium();
  check_payload(payload, "handshake message 1");
  initiator self;
  auto& s = *::new (self.raw_.data()) istate{};
  s.e_secret = ephemeral_secret;

  message1.resize(message1_min + payload.size());
  std::byte* const out = message1.data();
  out[0] = handshake_version;
  crypto_scalarmult_base(u8(out + 1), u8(s.e_secret.data()));
  const std::span<const std::byte> e_pub(out + 1, key_size);

  s.sym.init(psk.has_value());
  s.sym.mix_hash(agent_public_key);
  if (psk) {
    s.sym.mix_key(*psk, label_ck, nullptr);
  }
  s.sym.mix_hash(e_pub);
  key es{}, k1{};
  if (!dh(es, s.e_secret, agent_public_key)) {
    wipe(es);
    wipe(s);
    message1.clear();
    throw std::invalid_argument("the pinned agent public key is invalid (a low-order X25519 point)");
  }
  s.sym.mix_key(es, label_k1, &k1);
  wipe(es);
  std::byte* const c1 = out + 1 + key_size;
  seal(k1, s.sym.h, payload, c1);
  wipe(k1);
  s.sym.mix_hash({c1, payload.size() + tag_size});
  s.live = true;
  return self;
}

std::expected<std::vector<std::byte>, std::string> initiator::finish(std::span<const std::byte> message2,
                                                                      traffic_keys& keys) {
  auto& s = state_in<istate>(raw_);
  if (!s.live) {
    throw std::logic_error("e2e initiator::finish called twice or on a moved-from initiator");
  }
  // Whatever happens, this initiator is spent and its secrets are wiped on return.
  struct wiper {
    std::array<std::byte, 256>& raw;
    ~wiper() { sodium_memzero(raw.data(), raw.size()); }
  } wipe_on_return{raw_};

  if (message2.size() < message2_min || message2.size() > message2_max) {
    return std::unexpected("malformed e2e handshake message 2: " + std::to_string(message2.size()) +
                           " bytes where " + std::to_string(message2_min) + " to " + std::to_string(message2_max) +
                           " are expected");
  }
  const auto re_pub = message2.first(key_size);
  const auto c2 = message2.subspan(key_size);
  s.sym.mix_hash(re_pub);
  key ee{}, k2{};
  if (!dh(ee, s.e_secret, re_pub)) {
    wipe(ee);
    return std::unexpected(std::string("malformed e2e handshake message 2: invalid ephemeral key"));
  }
  s.sym.mix_key(ee, label_k2, &k2);
  wipe(ee);
  std::vector<std::byte> payload;
  const bool ok = open(k2, s.sym.h, c2, payload);
  wipe(k2);
  if (!ok) {
    return std::unexpected(std::string(bad_message2_key));
  }
  s.sym.mix_hash(c2);
  s.sym.split(keys.send, keys.recv);
  return payload;
}

// ---- responder ----------------------------------------------------------------------------

responder::responder() = default;

responder::responder(responder&& other) noexcept : payload_(std::move(other.payload_)), raw_(other.raw_) {
  other.payload_.clear();
  sodium_memzero(other.raw_.data(), other.raw_.size());
}

responder& responder::operator=(responder&& other) noexcept {
  if (this != &other) {
    payload_ = std::move(other.payload_);
    other.payload_.clear();
    raw_ = other.raw_;
    sodium_memzero(other.raw_.data(), other.raw_.size());
  }
  return *this;
}

responder::~responder() { sodium_memzero(raw_.data(), raw_.size()); }

const std::vector<std::byte>& responder::payload() const noexcept { return payload_; }

std::expected<responder, std::string> responder::read(const static_keypair& self, const std::optional<key>& psk,
                                                      std::span<const std::byte> message1) {
  detail::ensure_sodium();
  if (!message1.empty() && message1[0] != handshake_version) {
    return std::unexpected("unsupported e2e handshake version " + std::to_string(std::to_integer<int>(message1[0])) +
                           " (this agent speaks version " + std::to_string(std::to_integer<int>(handshake_version)) +
                           "); upgrade the older of client and agent");
  }
  if (message1.size() < message1_min || message1.size() > message1_max) {
    return std::unexpected("malformed e2e handshake message 1: " + std::to_string(message1.size()) +
                           " bytes where " + std::to_string(message1_min) + " to " + std::to_string(message1_max) +
                           " are expected");
  }
  responder r;
  auto& s = *::new (r.raw_.data()) rstate{};
  const auto e_pub = message1.subspan(1, key_size);
  const auto c1 = message1.subspan(1 + key_size);
  std::memcpy(s.e_remote.data(), e_pub.data(), key_size);

  s.sym.init(psk.has_value());
  s.sym.mix_hash(self.public_key);
  if (psk) {
    s.sym.mix_key(*psk, label_ck, nullptr);
  }
  s.sym.mix_hash(e_pub);
  key es{}, k1{};
  if (!dh(es, self.secret_key, e_pub)) {
    wipe(es);
    return std::unexpected(std::string("malformed e2e handshake message 1: invalid ephemeral key"));
  }
  s.sym.mix_key(es, label_k1, &k1);
  wipe(es);
  const bool ok = open(k1, s.sym.h, c1, r.payload_);
  wipe(k1);
  if (!ok) {
    return std::unexpected(std::string(bad_message1_key));
  }
  s.sym.mix_hash(c1);
  s.live = true;
  return r;
}

std::vector<std::byte> responder::finish(std::span<const std::byte> payload, traffic_keys& keys) {
  detail::ensure_sodium();
  key e{};
  randombytes_buf(e.data(), e.size());
  try {
    auto m = finish_with_ephemeral(payload, e, keys);
    wipe(e);
    return m;
  } catch (...) {
    wipe(e);
    throw;
  }
}

std::vector<std::byte> responder::finish_with_ephemeral(std::span<const std::byte> payload,
                                                        const key& ephemeral_secret, traffic_keys& keys) {
  auto& s = state_in<rstate>(raw_);
  if (!s.live) {
    throw std::logic_error("e2e responder::finish called twice or on a moved-from responder");
  }
  check_payload(payload, "handshake message 2");
  struct wiper {
    std::array<std::byte, 256>& raw;
    ~wiper() { sodium_memzero(raw.data(), raw.size()); }
  } wipe_on_return{raw_};

  std::vector<std::byte> message2(message2_min + payload.size());
  std::byte* const out = message2.data();
  crypto_scalarmult_base(u8(out), u8(ephemeral_secret.data()));
  s.sym.mix_hash({out, key_size});
  key ee{}, k2{};
  // e_remote passed the DH check in read(), so a zero result here is impossible for a
  // clamped scalar; check anyway rather than ever keying with an all-zero secret.
  if (!dh(ee, ephemeral_secret, s.e_remote)) {
    wipe(ee);
    throw std::logic_error("e2e responder: X25519 produced an all-zero shared secret");
  }
  s.sym.mix_key(ee, label_k2, &k2);
  wipe(ee);
  std::byte* const c2 = out + key_size;
  seal(k2, s.sym.h, payload, c2);
  wipe(k2);
  s.sym.mix_hash({c2, payload.size() + tag_size});
  s.sym.split(keys.recv, keys.send);
  return message2;
}

}  // namespace nl::e2e
