#include "proto/token.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <sodium.h>

namespace nl::proto::token {
namespace {

using json = nlohmann::json;

// Deeper JSON than this is refused before parsing: the header is read before the
// signature is checked, and nothing nl issues nests more than a few levels.
constexpr int max_json_depth = 32;
constexpr std::size_t max_jti_size = 128;

void ensure_sodium() {
  // sodium_init() is thread-safe and idempotent; failing means no usable RNG, which is
  // not a state to continue in.
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    std::abort();
  }
}

const unsigned char* uchars(std::span<const std::byte> s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
const unsigned char* uchars(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string b64_encode(std::span<const std::byte> bin, int variant) {
  std::string out(sodium_base64_encoded_len(bin.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), uchars(bin), bin.size(), variant);
  out.resize(out.size() - 1);  // drop the terminating NUL libsodium writes
  return out;
}

std::string b64url(std::string_view s) {
  return b64_encode(std::as_bytes(std::span(s.data(), s.size())), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// Strict decode: the whole input must be consumed (libsodium also refuses non-zero
// trailing bits, so every byte string has exactly one accepted encoding).
std::optional<std::vector<std::byte>> b64_decode(std::string_view s, int variant) {
  if (s.empty()) {
    return std::vector<std::byte>{};  // libsodium's output pointer must not be null
  }
  std::vector<std::byte> bin(s.size());
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), s.data(), s.size(),
                        nullptr, &len, &end, variant) != 0 ||
      end != s.data() + s.size()) {
    return std::nullopt;
  }
  bin.resize(len);
  return bin;
}


// Parses a JSON object without exceptions; nullopt for anything else.
std::optional<json> parse_object(std::span<const std::byte> bytes) {
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!json_within_depth(text, max_json_depth)) {
    return std::nullopt;
  }
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  return j;
}

std::array<unsigned char, crypto_auth_hmacsha256_BYTES> hmac(std::string_view msg,
                                                             std::span<const std::byte> key) {
  // The init/update/final form takes keys of any length (crypto_auth_hmacsha256 wants 32).
  crypto_auth_hmacsha256_state st;
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_init(&st, uchars(key), key.size());
  crypto_auth_hmacsha256_update(&st, uchars(msg), msg.size());
  crypto_auth_hmacsha256_final(&st, mac.data());
  sodium_memzero(&st, sizeof st);
  return mac;
}

std::optional<std::int64_t> get_int(const json& j) {
  if (j.is_number_unsigned()) {
    auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(v);
  }
  if (j.is_number_integer()) {
    return j.get<std::int64_t>();
  }
  return std::nullopt;
}

// nullptr when `groups` is a valid "grp" list, else why not.
const char* check_groups(const std::vector<std::string>& groups) {
  if (groups.size() > max_groups) {
    return "at most 64 groups";
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (!valid_identifier(groups[i])) {
      return "a group must be 1..64 characters of [A-Za-z0-9._-]";
    }
    if (std::find(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(i), groups[i]) !=
        groups.begin() + static_cast<std::ptrdiff_t>(i)) {
      return "a group is named twice";
    }
  }
  return nullptr;
}

// Payload JSON from claims; throws std::invalid_argument when they could never verify.
std::string encode_payload(const claims& c) {
  if (!valid_identifier(c.tenant) || !valid_identifier(c.name)) {
    throw std::invalid_argument("tenant and name must be 1..64 characters of [A-Za-z0-9._-]");
  }
  if (c.exp == 0) {
    throw std::invalid_argument("token needs an expiry");
  }
  if (c.jti.size() > max_jti_size) {
    throw std::invalid_argument("jti too long");
  }
  json p = json::object();
  p["ten"] = c.tenant;
  p["sub"] = c.name;
  p["role"] = std::string(to_string(c.r));
  p["exp"] = c.exp;
  if (c.iat != 0) {
    p["iat"] = c.iat;
  }
  if (c.nbf != 0) {
    p["nbf"] = c.nbf;
  }
  if (!c.jti.empty()) {
    p["jti"] = c.jti;
  }
  if (auto why = check_groups(c.groups)) {
    throw std::invalid_argument(why);
  }
  if (!c.groups.empty()) {
    p["grp"] = c.groups;
  }
  if (!c.policy_json.empty()) {
    auto pol = json::parse(c.policy_json, nullptr, false);
    if (pol.is_discarded() || !pol.is_object() || !json_within_depth(c.policy_json, max_json_depth)) {
      throw std::invalid_argument("policy must be a JSON object");
    }
    p["pol"] = std::move(pol);
  }
  return p.dump();
}

std::expected<claims, std::string> fail(std::string_view why) { return std::unexpected(std::string(why)); }

bool is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::expected<claims, std::string> verify_impl(std::string_view token, const verify_keys& keys,
                                               std::int64_t now) {
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.remove_prefix(1);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.remove_suffix(1);
  if (token.empty()) {
    return fail(reason::missing);
  }
  if (token.size() > max_token_size) {
    return fail(reason::malformed);
  }
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) {
    return fail(reason::malformed);
  }
  auto header_b64 = token.substr(0, dot1);
  auto payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  auto sig_b64 = token.substr(dot2 + 1);
  auto signing_input = token.substr(0, dot2);
  if (header_b64.empty() || payload_b64.empty() ||
      !std::all_of(header_b64.begin(), header_b64.end(), is_b64url_char) ||
      !std::all_of(payload_b64.begin(), payload_b64.end(), is_b64url_char) ||
      !std::all_of(sig_b64.begin(), sig_b64.end(), is_b64url_char)) {
    return fail(reason::malformed);
  }

  auto header_bin = b64_decode(header_b64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  auto header = header_bin ? parse_object(*header_bin) : std::nullopt;
  if (!header) {
    return fail(reason::malformed);
  }
  auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) {
    return fail(reason::malformed);
  }
  // No header extension is understood, so a "crit" list can never be honoured (RFC 7515).
  if (header->contains("crit")) {
    return fail(reason::malformed);
  }
  const auto& alg = alg_it->get_ref<const std::string&>();
  bool hs256 = alg == "HS256" && !keys.hs256_secret.empty();
  bool eddsa = alg == "EdDSA" && keys.ed25519_public_key.size() == ed25519_public_key_size;
  if (!hs256 && !eddsa) {
    return fail(reason::unsupported_alg);
  }

  auto sig = b64_decode(sig_b64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (!sig) {
    return fail(reason::malformed);
  }
  if (hs256) {
    auto mac = hmac(signing_input, keys.hs256_secret);
    if (sig->size() != mac.size() || sodium_memcmp(sig->data(), mac.data(), mac.size()) != 0) {
      return fail(reason::bad_signature);
    }
  } else {
    if (sig->size() != crypto_sign_BYTES ||
        crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                    uchars(signing_input), signing_input.size(),
                                    uchars(keys.ed25519_public_key)) != 0) {
      return fail(reason::bad_signature);
    }
  }

  auto payload_bin = b64_decode(payload_b64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  auto payload = payload_bin ? parse_object(*payload_bin) : std::nullopt;
  if (!payload) {
    return fail(reason::malformed);
  }
  const json& p = *payload;
  claims c;
  auto ident = [&](const char* key, std::string& out) {
    auto it = p.find(key);
    if (it == p.end() || !it->is_string() || !valid_identifier(it->get_ref<const std::string&>())) {
      return false;
    }
    out = it->get<std::string>();
    return true;
  };
  if (!ident("ten", c.tenant) || !ident("sub", c.name)) {
    return fail(reason::invalid_claims);
  }
  auto role_it = p.find("role");
  std::optional<role> r;
  if (role_it != p.end() && role_it->is_string()) {
    r = parse_role(role_it->get_ref<const std::string&>());
  }
  if (!r) {
    return fail(reason::invalid_claims);
  }
  c.r = *r;
  // exp is required: a token without one would be valid forever.
  auto exp_it = p.find("exp");
  auto exp = exp_it == p.end() ? std::nullopt : get_int(*exp_it);
  if (!exp) {
    return fail(reason::invalid_claims);
  }
  c.exp = *exp;
  for (auto [key, out] : {std::pair{"iat", &c.iat}, std::pair{"nbf", &c.nbf}}) {
    auto it = p.find(key);
    if (it == p.end()) {
      continue;
    }
    auto v = get_int(*it);
    if (!v) {
      return fail(reason::invalid_claims);
    }
    *out = *v;
  }
  if (auto it = p.find("jti"); it != p.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().size() > max_jti_size) {
      return fail(reason::invalid_claims);
    }
    c.jti = it->get<std::string>();
  }
  if (auto it = p.find("grp"); it != p.end()) {
    if (!it->is_array() || it->size() > max_groups) {
      return fail(reason::invalid_claims);
    }
    for (const auto& g : *it) {
      if (!g.is_string()) {
        return fail(reason::invalid_claims);
      }
      c.groups.push_back(g.get<std::string>());
    }
    if (check_groups(c.groups) != nullptr) {
      return fail(reason::invalid_claims);
    }
  }
  if (auto it = p.find("pol"); it != p.end()) {
    if (!it->is_object()) {
      return fail(reason::invalid_claims);
    }
    c.policy_json = it->dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // `now` is trusted and sane, so only it takes part in arithmetic (no overflow from
  // hostile exp/nbf values).
  if (c.exp < now - clock_skew_seconds) {
    return fail(reason::expired);
  }
  if (c.nbf != 0 && c.nbf > now + clock_skew_seconds) {
    return fail(reason::not_yet_valid);
  }
  return c;
}

std::string sign_hs256(std::string_view signing_input, std::span<const std::byte> secret) {
  auto mac = hmac(signing_input, secret);
  return b64_encode(std::as_bytes(std::span(mac)), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

}  // namespace

std::string_view to_string(role r) noexcept { return r == role::agent ? "agent" : "client"; }

std::optional<role> parse_role(std::string_view s) noexcept {
  if (s == "agent") return role::agent;
  if (s == "client") return role::client;
  return std::nullopt;
}

bool valid_identifier(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string new_jti() {
  ensure_sodium();
  std::array<unsigned char, 16> id;
  randombytes_buf(id.data(), id.size());
  std::string hex(id.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), id.data(), id.size());
  hex.pop_back();
  return hex;
}

std::string issue(const claims& c, std::span<const std::byte> secret) {
  ensure_sodium();
  if (secret.empty()) {
    throw std::invalid_argument("empty token secret");
  }
  auto input = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(encode_payload(c));
  return input + "." + sign_hs256(input, secret);
}

std::string issue_eddsa(const claims& c, std::span<const std::byte> ed25519_secret_key) {
  ensure_sodium();
  if (ed25519_secret_key.size() != ed25519_secret_key_size) {
    throw std::invalid_argument("an Ed25519 secret key is 64 bytes");
  }
  auto input = b64url(R"({"alg":"EdDSA","typ":"JWT"})") + "." + b64url(encode_payload(c));
  std::array<std::byte, crypto_sign_BYTES> sig{};
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, uchars(input), input.size(),
                       uchars(ed25519_secret_key));
  return input + "." + b64_encode(sig, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::expected<claims, std::string> verify(std::string_view token, const verify_keys& keys,
                                          std::int64_t now) {
  ensure_sodium();
  try {
    return verify_impl(token, keys, now);
  } catch (...) {
    // Only allocation failure can get here; still never let a token crash the gateway.
    return fail(reason::malformed);
  }
}

std::expected<claims, std::string> verify(std::string_view token, std::span<const std::byte> secret,
                                          std::int64_t now) {
  return verify(token, verify_keys{secret, {}}, now);
}

ed25519_keypair generate_ed25519_keypair() {
  ensure_sodium();
  ed25519_keypair kp{std::vector<std::byte>(ed25519_public_key_size),
                     std::vector<std::byte>(ed25519_secret_key_size)};
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(kp.public_key.data()),
                      reinterpret_cast<unsigned char*>(kp.secret_key.data()));
  return kp;
}

std::vector<std::byte> generate_secret() {
  ensure_sodium();
  std::vector<std::byte> s(secret_size);
  randombytes_buf(s.data(), s.size());
  return s;
}

std::string encode_secret(std::span<const std::byte> secret) {
  return b64_encode(secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::optional<std::vector<std::byte>> decode_secret(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  // '-'/'_' only occur in base64url and '+'/'/' only in standard base64, so trying both
  // cannot decode one text two ways.
  auto bin = b64_decode(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (!bin) {
    bin = b64_decode(text, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  }
  if (!bin || bin->size() < secret_size) {
    return std::nullopt;
  }
  return bin;
}

bool json_within_depth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return false;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace nl::proto::token
