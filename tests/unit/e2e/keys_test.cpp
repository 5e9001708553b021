#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

#include "e2e/e2e.hpp"
#include "tests/unit/e2e/util.hpp"

using namespace nl::e2e;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "nl-e2e-test-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

unsigned mode_of(const fs::path& p) {
  struct stat st{};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write_file(const fs::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p) << text;
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

}  // namespace

TEST_CASE("public keys have one text form", "[e2e][keys]") {
  const auto kp = generate_keypair();
  CHECK(public_key_of(kp.secret_key) == kp.public_key);
  const auto text = encode_public_key(kp.public_key);
  CHECK(text.size() == 47);
  CHECK(text.starts_with("nl1:"));
  CHECK(text.find_first_of("+/=") == std::string::npos);
  CHECK(decode_public_key(text) == kp.public_key);
  CHECK(decode_public_key("  " + text + "\n") == kp.public_key);

  CHECK_FALSE(decode_public_key(""));
  CHECK_FALSE(decode_public_key("nl1:"));
  CHECK_FALSE(decode_public_key(text.substr(0, 46)));
  CHECK_FALSE(decode_public_key(text + "A"));
  CHECK_FALSE(decode_public_key("nl2:" + text.substr(4)));
  CHECK_FALSE(decode_public_key(text.substr(4)));
  CHECK_FALSE(decode_public_key(text + "="));
  auto std_alphabet = text;
  std_alphabet[10] = '+';
  CHECK_FALSE(decode_public_key(std_alphabet));
  auto inner_space = text;
  inner_space[20] = ' ';
  CHECK_FALSE(decode_public_key(inner_space));
  // The last character carries 2 padding bits that must be zero.
  const key zero{};
  const auto z = encode_public_key(zero);
  CHECK(z == "nl1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  CHECK(decode_public_key(z) == zero);
  CHECK_FALSE(decode_public_key(z.substr(0, 46) + "B"));
}

TEST_CASE("fingerprints are short grouped hex", "[e2e][keys]") {
  const auto kp = generate_keypair();
  const auto f = fingerprint(kp.public_key);
  // "xxxx:xxxx:xxxx:xxxx:xxxx", lower-case hex (no std::regex: g++ 12 warns under ASan).
  REQUIRE(f.size() == 24);
  for (std::size_t i = 0; i < f.size(); ++i) {
    INFO(f);
    if (i % 5 == 4) {
      CHECK(f[i] == ':');
    } else {
      CHECK(std::string_view("0123456789abcdef").find(f[i]) != std::string_view::npos);
    }
  }
  CHECK(fingerprint(kp.public_key) == f);
  CHECK(fingerprint(generate_keypair().public_key) != f);
}

TEST_CASE("the agent key file is created once, owner-only, and reloaded", "[e2e][keys]") {
  temp_dir dir;
  const auto path = dir.path / "sub" / "dir" / "agent.key";
  auto created = load_or_create_keypair(path.string());
  REQUIRE(created.has_value());
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path.parent_path()) == 0700);
  CHECK(mode_of(path.parent_path().parent_path()) == 0700);
  CHECK(public_key_of(created->secret_key) == created->public_key);

  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  CHECK(line.starts_with("nl1-secret:"));
  CHECK(line.size() == 11 + 43);

  auto again = load_or_create_keypair(path.string());
  REQUIRE(again.has_value());
  CHECK(again->secret_key == created->secret_key);
  CHECK(again->public_key == created->public_key);
  auto loaded = load_keypair(path.string());
  REQUIRE(loaded.has_value());
  CHECK(loaded->public_key == created->public_key);
}

TEST_CASE("load_keypair needs an existing file", "[e2e][keys]") {
  temp_dir dir;
  const auto path = (dir.path / "missing.key").string();
  auto r = load_keypair(path);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains(path) && Catch::Contains("does not exist"));
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("a key file others can read is refused", "[e2e][keys]") {
  temp_dir dir;
  const auto path = dir.path / "agent.key";
  REQUIRE(load_or_create_keypair(path.string()));
  for (mode_t m : {0644, 0640, 0604, 0660, 0602}) {
    REQUIRE(::chmod(path.c_str(), m) == 0);
    auto r = load_or_create_keypair(path.string());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains(path.string()) && Catch::Contains("chmod 600 " + path.string()));
    CHECK_FALSE(load_keypair(path.string()));
  }
  REQUIRE(::chmod(path.c_str(), 0400) == 0);  // read-only for the owner is fine
  CHECK(load_keypair(path.string()));
}

TEST_CASE("a symlinked key file is refused", "[e2e][keys]") {
  temp_dir dir;
  const auto real = dir.path / "real.key";
  const auto link = dir.path / "agent.key";
  REQUIRE(load_or_create_keypair(real.string()));
  fs::create_symlink(real, link);
  auto r = load_or_create_keypair(link.string());
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("symbolic link"));
  // A dangling link is not followed to create a file either.
  const auto dangling = dir.path / "dangling.key";
  fs::create_symlink(dir.path / "nowhere.key", dangling);
  auto d = load_or_create_keypair(dangling.string());
  REQUIRE_FALSE(d);
  CHECK_THAT(d.error(), Catch::Contains("symbolic link"));
  CHECK_FALSE(fs::exists(dir.path / "nowhere.key"));
}

TEST_CASE("malformed key files are refused, not replaced", "[e2e][keys]") {
  temp_dir dir;
  const auto path = dir.path / "agent.key";
  const auto good = "nl1-secret:" + encode_public_key(generate_keypair().public_key).substr(4);
  for (const std::string& text : {std::string(""), std::string("hello\n"), good.substr(0, good.size() - 1),
                                 good + "A", "nl1:" + good.substr(11), good + "\nsecond line\n",
                                 std::string(200, 'x')}) {
    write_file(path, text, 0600);
    auto r = load_or_create_keypair(path.string());
    INFO(text);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("is not an nl agent key"));
    std::ifstream in(path);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == text);
  }
  write_file(path, "  " + good + "\r\n", 0600);
  CHECK(load_keypair(path.string()));
}

TEST_CASE("a directory is not a key file", "[e2e][keys]") {
  temp_dir dir;
  auto r = load_keypair(dir.path.string());
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("not a regular file"));
}

TEST_CASE("the passphrase psk depends on the phrase and the agent key", "[e2e][keys][slow]") {
  const auto a = generate_keypair().public_key;
  const auto b = generate_keypair().public_key;
  const auto pa = derive_psk("correct horse", a);
  const auto pb = derive_psk("correct horse", b);
  CHECK(pa != pb);
  CHECK(pa != key{});
}
