// nl access tokens: compact JWTs (RFC 7519) signed with HS256 (HMAC-SHA-256 over the
// gateway's secret) or EdDSA (Ed25519, RFC 8037), carrying the tenant, the peer's name
// and role, validity times, a unique id for revocation, optional groups and an optional
// policy object (acl/policy.hpp's JSON form; proto only checks that it is an object).
// The gateway issues and verifies them; agents and clients treat them as opaque strings.
// Verification never throws and answers with one of the fixed user-facing reasons below,
// which the gateway shows verbatim in its 401 responses.
// Thread-safety: all functions are safe to call concurrently (libsodium is initialised
// once, thread-safely, on first use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nl::proto::token {

// Tokens longer than this are refused before any parsing.
inline constexpr std::size_t max_token_size = 8 * 1024;
// Tolerated clock difference between issuer and verifier for exp and nbf, seconds.
inline constexpr std::int64_t clock_skew_seconds = 30;
// Size of a generated HS256 secret; decode_secret refuses anything shorter.
inline constexpr std::size_t secret_size = 32;

// The reasons verify() can give, verbatim.
namespace reason {
inline constexpr std::string_view missing = "missing token";
inline constexpr std::string_view malformed = "malformed token";
inline constexpr std::string_view unsupported_alg = "unsupported algorithm";
inline constexpr std::string_view bad_signature = "bad signature";
inline constexpr std::string_view expired = "token expired";
inline constexpr std::string_view not_yet_valid = "token not yet valid";
inline constexpr std::string_view invalid_claims = "invalid claims";
}  // namespace reason

enum class role : std::uint8_t { agent, client };
std::string_view to_string(role r) noexcept;               // "agent" | "client"
std::optional<role> parse_role(std::string_view s) noexcept;

struct claims {
  std::string tenant;        // "ten": 1..64 chars of [A-Za-z0-9._-]
  std::string name;          // "sub": same alphabet; the agent's or client's name
  role r = role::client;     // "role"
  std::int64_t iat = 0;      // issued at, unix seconds (0 when absent)
  std::int64_t exp = 0;      // expiry, unix seconds (required)
  std::int64_t nbf = 0;      // not before, unix seconds; 0 means absent
  std::string jti;           // unique id (new_jti()), used by the revocation list; may be empty
  std::string policy_json;   // "pol" object as compact JSON; "" when absent
  // "grp": the client's groups, for ACL rules naming "group:NAME". Each 1..64 chars of
  // [A-Za-z0-9._-], at most max_groups, no duplicates; the claim is left out when empty
  // (and an empty list verifies as no groups).
  std::vector<std::string> groups;
};

// Most groups one token may name.
inline constexpr std::size_t max_groups = 64;

// True for 1..64 characters of [A-Za-z0-9._-] (tenant and name alphabet).
bool valid_identifier(std::string_view s) noexcept;

// Random 128-bit id as 32 lowercase hex digits.
std::string new_jti();

// Signs `c` with HS256. Throws std::invalid_argument when the claims would not verify
// (bad tenant/name, exp 0, policy_json not a JSON object, a bad or repeated group, more
// than max_groups) or the secret is empty:
// issuing is a command-line/start-up action, where an exception is a clean exit.
std::string issue(const claims& c, std::span<const std::byte> secret);

// Checks an HS256 token against `secret` at time `now` (unix seconds). The error is one of
// the reason:: strings. Tokens with any other algorithm, "none" included, are refused.
std::expected<claims, std::string> verify(std::string_view token, std::span<const std::byte> secret,
                                          std::int64_t now);

// --- EdDSA (Ed25519) ---
inline constexpr std::size_t ed25519_public_key_size = 32;
inline constexpr std::size_t ed25519_secret_key_size = 64;  // libsodium's seed||public form

struct ed25519_keypair {
  std::vector<std::byte> public_key;  // 32 bytes
  std::vector<std::byte> secret_key;  // 64 bytes
};
ed25519_keypair generate_ed25519_keypair();

// Signs `c` with EdDSA. Throws std::invalid_argument like issue(), and when the key is not
// ed25519_secret_key_size bytes.
std::string issue_eddsa(const claims& c, std::span<const std::byte> ed25519_secret_key);

// The keys a verifier accepts; an empty span disables that algorithm.
struct verify_keys {
  std::span<const std::byte> hs256_secret;
  std::span<const std::byte> ed25519_public_key;  // 32 bytes when set
};
std::expected<claims, std::string> verify(std::string_view token, const verify_keys& keys,
                                          std::int64_t now);

// --- secrets on disk: base64url without padding, one line ---
std::vector<std::byte> generate_secret();  // secret_size random bytes

// True when no JSON array/object in `text` nests deeper than `max_depth` (strings are
// skipped). Checked before parsing untrusted JSON, so the parser's recursion is bounded.
bool json_within_depth(std::string_view text, int max_depth);
std::string encode_secret(std::span<const std::byte> secret);
// Accepts base64url or standard base64, padded or not, with surrounding whitespace
// (a trailing newline from a file). nullopt when undecodable or shorter than secret_size.
std::optional<std::vector<std::byte>> decode_secret(std::string_view text);

}  // namespace nl::proto::token
