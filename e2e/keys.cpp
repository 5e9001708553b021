// Long-term keys: generation, text forms, fingerprints, the agent's key file, and the
// passphrase-derived pre-shared key. See docs/security.md, "End-to-end encryption".
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/detail.hpp"
#include "e2e/e2e.hpp"

namespace nl::e2e {

using detail::u8;

namespace detail {

void ensure_sodium() {
  static const bool ok = [] {
    if (sodium_init() < 0) {
      throw std::runtime_error("libsodium could not be initialised (sodium_init failed)");
    }
    return true;
  }();
  (void)ok;
}

}  // namespace detail

namespace {

constexpr std::string_view public_prefix = "nl1:";
constexpr std::string_view secret_prefix = "nl1-secret:";
constexpr int b64_variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::size_t b64_key_chars = 43;  // unpadded base64 of 32 bytes

std::string b64(const key& k) {
  char buf[b64_key_chars + 1];  // sodium_base64_ENCODED_LEN(32, variant) including the NUL
  static_assert(sodium_base64_ENCODED_LEN(key_size, b64_variant) == sizeof buf);
  sodium_bin2base64(buf, sizeof buf, u8(k.data()), k.size(), b64_variant);
  std::string out(buf, b64_key_chars);
  sodium_memzero(buf, sizeof buf);
  return out;
}

// Exactly 43 canonical base64url characters -> 32 bytes (libsodium refuses non-zero
// padding bits, so each key has one text form).
std::optional<key> unb64(std::string_view text) {
  if (text.size() != b64_key_chars) {
    return std::nullopt;
  }
  key k{};
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(u8(k.data()), k.size(), text.data(), text.size(), nullptr, &len, &end, b64_variant) != 0 ||
      len != key_size || end != text.data() + text.size()) {
    sodium_memzero(k.data(), k.size());
    return std::nullopt;
  }
  return k;
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view ws = " \t\r\n\v\f";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) {
    return {};
  }
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string errno_text(int e) { return std::strerror(e); }

// Closes a descriptor on every path.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

// mkdir -p for the directory part of `path`, each missing component mode 0700.
std::expected<void, std::string> make_parent_dirs(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return {};
  }
  const std::string dir = path.substr(0, slash);
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') {
      continue;
    }
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return std::unexpected("cannot create the directory " + part + " for the agent key file " + path + ": " +
                             errno_text(errno) + "; create it or choose another key_file.");
    }
  }
  return {};
}

std::expected<static_keypair, std::string> read_key_file(int fd, const std::string& path) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    return std::unexpected("cannot inspect the agent key file " + path + ": " + errno_text(errno) + ".");
  }
  if (!S_ISREG(st.st_mode)) {
    return std::unexpected("the agent key file " + path + " is not a regular file; point key_file at a file.");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::unexpected("the agent key file " + path + " has mode " + mode +
                           ", so other users may read or replace the agent's secret key; run \"chmod 600 " + path +
                           "\" (and consider generating a new key if others could have read it).");
  }
  // A valid file is one short line; read a little more than that to notice junk.
  char buf[128];
  std::size_t got = 0;
  while (got < sizeof buf) {
    const auto n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int e = errno;
      sodium_memzero(buf, sizeof buf);
      return std::unexpected("cannot read the agent key file " + path + ": " + errno_text(e) + ".");
    }
    if (n == 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  const std::string_view text = trim(std::string_view(buf, got));
  std::optional<key> secret;
  if (text.size() == secret_prefix.size() + b64_key_chars && text.starts_with(secret_prefix)) {
    secret = unb64(text.substr(secret_prefix.size()));
  }
  sodium_memzero(buf, sizeof buf);
  if (!secret) {
    return std::unexpected("the agent key file " + path +
                           " is not an nl agent key (expected one line \"nl1-secret:\" followed by 43 base64url "
                           "characters); restore the right file, or move this one away to let nl-agent create a "
                           "new key (clients must then pin the new public key).");
  }
  static_keypair kp;
  kp.secret_key = *secret;
  sodium_memzero(secret->data(), secret->size());
  kp.public_key = public_key_of(kp.secret_key);
  return kp;
}

std::expected<int, std::string> open_existing(const std::string& path, bool& missing) {
  missing = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0) {
    return fd;
  }
  const int e = errno;
  if (e == ENOENT) {
    missing = true;
    return std::unexpected("the agent key file " + path +
                           " does not exist; run \"nl-agent key\" once to create it, or check key_file.");
  }
  if (e == ELOOP) {
    return std::unexpected("the agent key file " + path +
                           " is a symbolic link, which is refused (it could point at a file others control); "
                           "point key_file at the real file.");
  }
  return std::unexpected("cannot open the agent key file " + path + ": " + errno_text(e) + ".");
}

std::expected<static_keypair, std::string> create_key_file(const std::string& path, bool& exists) {
  exists = false;
  if (auto dirs = make_parent_dirs(path); !dirs) {
    return std::unexpected(dirs.error());
  }
  fd_guard f{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600)};
  if (f.fd < 0) {
    exists = errno == EEXIST;
    return std::unexpected("cannot create the agent key file " + path + ": " + errno_text(errno) +
                           "; check the directory's permissions or choose another key_file.");
  }
  static_keypair kp = generate_keypair();
  std::string line = std::string(secret_prefix) + b64(kp.secret_key) + "\n";
  std::size_t done = 0;
  int e = 0;
  while (done < line.size()) {
    const auto n = ::write(f.fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      e = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  sodium_memzero(line.data(), line.size());
  if (e == 0 && ::fsync(f.fd) != 0) {
    e = errno;
  }
  if (e != 0) {
    ::unlink(path.c_str());
    sodium_memzero(kp.secret_key.data(), kp.secret_key.size());
    return std::unexpected("cannot write the agent key file " + path + ": " + errno_text(e) +
                           "; free some space or choose another key_file.");
  }
  return kp;
}

}  // namespace

static_keypair generate_keypair() {
  detail::ensure_sodium();
  static_keypair kp;
  randombytes_buf(kp.secret_key.data(), kp.secret_key.size());
  crypto_scalarmult_base(u8(kp.public_key.data()), u8(kp.secret_key.data()));
  return kp;
}

key public_key_of(const key& secret_key) {
  detail::ensure_sodium();
  key pub{};
  crypto_scalarmult_base(u8(pub.data()), u8(secret_key.data()));
  return pub;
}

std::string encode_public_key(const key& public_key) {
  detail::ensure_sodium();
  return std::string(public_prefix) + b64(public_key);
}

std::optional<key> decode_public_key(std::string_view text) {
  detail::ensure_sodium();
  text = trim(text);
  if (!text.starts_with(public_prefix)) {
    return std::nullopt;
  }
  return unb64(text.substr(public_prefix.size()));
}

std::string fingerprint(const key& public_key) {
  detail::ensure_sodium();
  key h{};
  detail::blake2b().update("nl e2e fingerprint").update(public_key).final(h);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(24);
  for (std::size_t i = 0; i < 10; ++i) {
    if (i != 0 && i % 2 == 0) {
      out += ':';
    }
    const auto b = std::to_integer<unsigned>(h[i]);
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::expected<static_keypair, std::string> load_keypair(const std::string& path) {
  detail::ensure_sodium();
  bool missing = false;
  auto fd = open_existing(path, missing);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  fd_guard f{*fd};
  return read_key_file(f.fd, path);
}

std::expected<static_keypair, std::string> load_or_create_keypair(const std::string& path) {
  detail::ensure_sodium();
  bool missing = false;
  auto fd = open_existing(path, missing);
  if (fd) {
    fd_guard f{*fd};
    return read_key_file(f.fd, path);
  }
  if (!missing) {
    return std::unexpected(fd.error());
  }
  bool exists = false;
  auto created = create_key_file(path, exists);
  if (!created && exists) {
    // Another process created it between our open and our O_EXCL create: use theirs.
    return load_keypair(path);
  }
  return created;
}

key derive_psk(std::string_view passphrase, const key& agent_public_key) {
  detail::ensure_sodium();
  key h{};
  detail::blake2b().update("nl e2e psk").update(agent_public_key).final(h);
  unsigned char salt[crypto_pwhash_SALTBYTES];
  static_assert(sizeof salt == 16);
  std::memcpy(salt, h.data(), sizeof salt);
  key psk{};
  if (crypto_pwhash(u8(psk.data()), psk.size(), passphrase.data(), passphrase.size(), salt,
                    crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("not enough memory to derive the e2e key from the passphrase (argon2id needs 256 MiB)");
  }
  return psk;
}

}  // namespace nl::e2e
