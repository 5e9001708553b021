// The parts of config/ that touch files: loading, the search path, tokens, relative paths.
#include "config/config.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <catch2/catch.hpp>

namespace {

namespace fs = std::filesystem;

// A fresh directory per test case, removed afterwards.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("nl-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, std::string_view text) const {
    auto p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

// Sets an environment variable for one scope.
struct env_override {
  std::string name;
  std::optional<std::string> old;
  env_override(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) {
      old = v;
    }
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_override() {
    if (old) {
      ::setenv(name.c_str(), old->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
};

}  // namespace

TEST_CASE("load: missing, unreadable, directory, syntax", "[config][files]") {
  temp_dir t;
  SECTION("missing file") {
    auto missing = (t.path / "nope.yaml").string();
    auto r = nl::config::load_gateway(missing);
    REQUIRE_FALSE(r);
    CHECK(r.error().file == missing);
    CHECK(r.error().line == 0);
    CHECK_THAT(r.error().message, Catch::Contains("cannot read config file: No such file or directory") &&
                                      Catch::Contains("-c FILE"));
    CHECK(r.error().to_string().starts_with(missing + ": cannot read"));
  }
  SECTION("a directory") {
    auto r = nl::config::load_agent(t.path.string());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("is a directory"));
  }
  SECTION("unreadable") {
    auto p = t.write("secret.yaml", "log_level: info\n");
    fs::permissions(p, fs::perms::none);
    if (std::ofstream probe(p); !probe) {  // root reads anything: then skip
      auto r = nl::config::load_client(p);
      REQUIRE_FALSE(r);
      CHECK_THAT(r.error().message, Catch::Contains("Permission denied"));
    }
    fs::permissions(p, fs::perms::owner_all);
  }
  SECTION("syntax error carries the file name and 1-based line") {
    auto p = t.write("bad.yaml", "listen: 0.0.0.0:443\nsession:\n  window: [1, 2\n");
    auto r = nl::config::load_gateway(p);
    REQUIRE_FALSE(r);
    CHECK(r.error().file == p);
    CHECK(r.error().line >= 3);
    CHECK_THAT(r.error().to_string(), Catch::StartsWith(p + ":") && Catch::Contains("YAML syntax error"));
  }
  SECTION("no path: defaults only") {
    auto r = nl::config::load_gateway("");
    REQUIRE(r);
    CHECK(r->source.empty());
    CHECK(r->listen == "0.0.0.0:443");
  }
}

TEST_CASE("load: relative paths are relative to the config file", "[config][files]") {
  temp_dir t;
  auto p = t.write("etc/nl-gateway.yaml",
                   "secret_file: secret\nrevoked_file: ../revoked\ntls: { cert: /abs/c.pem, key: k.pem }\n");
  auto g = nl::config::load_gateway(p);
  REQUIRE(g);
  CHECK(g->source == p);
  CHECK(g->secret_file == (t.path / "etc" / "secret").string());
  CHECK(g->revoked_file == (t.path / "revoked").string());
  CHECK(g->tls->cert_file == "/abs/c.pem");
  CHECK(g->tls->key_file == (t.path / "etc" / "k.pem").string());

  auto a = nl::config::load_agent(t.write("a/nl-agent.yaml", "token_file: tok\ntls: { ca: ca.pem }\n"));
  REQUIRE(a);
  CHECK(a->peer.token_file == (t.path / "a" / "tok").string());
  CHECK(a->peer.tls.ca_file == (t.path / "a" / "ca.pem").string());

  // parse_* leaves paths alone
  auto raw = nl::config::parse_agent("token_file: tok\n", (t.path / "x.yaml").string());
  REQUIRE(raw);
  CHECK(raw->peer.token_file == "tok");
}

TEST_CASE("find_config: explicit, cwd, XDG, none", "[config][files]") {
  temp_dir t;
  // A program name no real file uses, so ./ and /etc/nl cannot interfere.
  std::string program = "cfgtest" + std::to_string(::getpid());
  std::string file = "nl-" + program + ".yaml";
  env_override xdg("XDG_CONFIG_HOME", t.path.string());

  CHECK(nl::config::find_config(program, "/explicit/path.yaml") == "/explicit/path.yaml");
  CHECK(nl::config::find_config(program, "").empty());

  auto in_xdg = t.write("nl/" + file, "");
  CHECK(nl::config::find_config(program, "") == in_xdg);

  {
    env_override home("HOME", t.path.string());
    env_override no_xdg("XDG_CONFIG_HOME", "");
    CHECK(nl::config::find_config(program, "").empty());  // ~/.config/nl/... does not exist
    auto in_home = t.write(".config/nl/" + file, "");
    CHECK(nl::config::find_config(program, "") == in_home);
  }

  auto old_cwd = fs::current_path();
  fs::current_path(t.path);
  t.write(file, "");
  auto found = nl::config::find_config(program, "");
  fs::current_path(old_cwd);
  CHECK(found == (fs::path(".") / file).string());
}

TEST_CASE("read_token", "[config][files]") {
  temp_dir t;
  nl::config::peer_config p;

  SECTION("nothing configured") {
    auto r = nl::config::read_token(p);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("no token configured") && Catch::Contains("--token-file"));
  }
  SECTION("inline token wins and is trimmed") {
    p.token = "  abc.def.ghi\n";
    p.token_file = "/does/not/matter";
    CHECK(nl::config::read_token(p).value() == "abc.def.ghi");
  }
  SECTION("first non-empty line of the file, trimmed") {
    p.token_file = t.write("tok", "\n  eyJ.a.b \r\nsecond line\n");
    CHECK(nl::config::read_token(p).value() == "eyJ.a.b");
    p.token_file = t.write("tok2", "eyJ.c.d");  // no newline at all
    CHECK(nl::config::read_token(p).value() == "eyJ.c.d");
  }
  SECTION("empty file") {
    p.token_file = t.write("empty", " \n\n");
    auto r = nl::config::read_token(p);
    REQUIRE_FALSE(r);
    CHECK(r.error().file == p.token_file);
    CHECK_THAT(r.error().message, Catch::Contains("token file is empty") && Catch::Contains("first line"));
  }
  SECTION("missing file") {
    p.token_file = (t.path / "missing").string();
    auto r = nl::config::read_token(p);
    REQUIRE_FALSE(r);
    CHECK(r.error().file == p.token_file);
    CHECK_THAT(r.error().to_string(),
               Catch::StartsWith(p.token_file + ": cannot read token file: No such file"));
  }
}
