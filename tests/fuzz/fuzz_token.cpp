// Two ways into the token verifier with a fixed secret and clock:
//  1. the input as a token (exercises everything up to the signature check);
//  2. the input as "<header JSON>\n<payload JSON>", signed with the fixed secret, so the
//     claim validation behind the signature check is reached too. Whatever verifies must
//     hold valid claims and survive a re-issue -> verify round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <sodium.h>

#include "proto/token.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::proto::token;

namespace {

constexpr std::int64_t now = 1700000000;

std::span<const std::byte> secret() {
  static const auto s = [] {
    std::array<std::byte, 32> k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::byte>(i);
    return k;
  }();
  return s;
}

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.pop_back();
  return out;
}

std::string sign(std::string_view header, std::string_view payload) {
  auto input = b64url(header) + "." + b64url(payload);
  auto key = secret();
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

bool known_reason(const std::string& r) {
  for (auto k : {reason::missing, reason::malformed, reason::unsupported_alg, reason::bad_signature,
                 reason::expired, reason::not_yet_valid, reason::invalid_claims}) {
    if (r == k) {
      return true;
    }
  }
  return false;
}

void check(const std::expected<claims, std::string>& v) {
  if (!v) {
    NL_FUZZ_CHECK(known_reason(v.error()));
    return;
  }
  NL_FUZZ_CHECK(valid_identifier(v->tenant) && valid_identifier(v->name));
  NL_FUZZ_CHECK(v->exp >= now - clock_skew_seconds);
  NL_FUZZ_CHECK(v->nbf <= now + clock_skew_seconds);
  auto again = verify(issue(*v, secret()), secret(), now);
  NL_FUZZ_CHECK(again);
  NL_FUZZ_CHECK(again->tenant == v->tenant && again->name == v->name && again->r == v->r &&
                again->iat == v->iat && again->exp == v->exp && again->nbf == v->nbf &&
                again->jti == v->jti && again->policy_json == v->policy_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check(verify(text, secret(), now));

  auto nl = text.find('\n');
  if (nl != std::string_view::npos) {
    check(verify(sign(text.substr(0, nl), text.substr(nl + 1)), secret(), now));
  }
  (void)decode_secret(text);
  return 0;
}
