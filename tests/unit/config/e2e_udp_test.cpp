// The e2e, udp, udp_forwards settings and the policy's time/client keys: values, defaults,
// path resolution and errors with their lines.
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "config/config.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::string_view key_a = "nl1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
constexpr std::string_view key_b = "nl1:__________________________________________8";

struct error_case {
  std::string_view what;
  char program;  // 'a'gent, 'c'lient
  std::string yaml;
  int line;
  std::string_view says;
};

}  // namespace

TEST_CASE("valid_public_key_text", "[config][e2e]") {
  CHECK(nl::config::valid_public_key_text(key_a));
  CHECK(nl::config::valid_public_key_text(key_b));
  const std::string bad[] = {
      "",
      "nl1:",
      std::string(key_a.substr(4)),                        // no prefix
      "nl2:" + std::string(key_a.substr(4)),               // other version
      std::string(key_a) + "A",                            // 44 characters
      std::string(key_a.substr(0, key_a.size() - 1)),      // 42 characters
      std::string(key_a.substr(0, key_a.size() - 1)) + "9",  // non-zero padding bits
      std::string(key_a.substr(0, key_a.size() - 1)) + "=",  // padding
      "nl1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd+h8",    // '+' is standard base64, not url
      "NL1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
  };
  for (const auto& k : bad) {
    INFO(k);
    CHECK_FALSE(nl::config::valid_public_key_text(k));
  }
}

TEST_CASE("agent e2e and udp", "[config][e2e]") {
  SECTION("defaults") {
    auto a = nl::config::parse_agent("", "a.yaml");
    REQUIRE(a);
    CHECK(a->e2e.key_file == "nl-agent.key");
    CHECK(a->e2e.passphrase_file.empty());
    CHECK_FALSE(a->e2e.require);
    CHECK(a->udp.idle_timeout == 60s);
    CHECK(a->udp.max_flows == 256);
  }
  SECTION("values") {
    auto a = nl::config::parse_agent(
        "e2e:\n  key_file: /var/lib/nl/agent.key\n  passphrase_file: pass.txt\n  require: yes\n"
        "udp: { idle_timeout: 2m, max_flows: 1024 }\n",
        "a.yaml");
    REQUIRE(a);
    CHECK(a->e2e.key_file == "/var/lib/nl/agent.key");
    CHECK(a->e2e.passphrase_file == "pass.txt");  // parse_* leaves paths alone
    CHECK(a->e2e.require);
    CHECK(a->udp.idle_timeout == 120s);
    CHECK(a->udp.max_flows == 1024);
  }
}

TEST_CASE("client e2e pins, udp and udp_forwards", "[config][e2e]") {
  auto c = nl::config::parse_client(
      "agent: home\n"
      "e2e:\n"
      "  pins:\n"
      "    home: " + std::string(key_a) + "\n"
      "    \"office-2\": \"" + std::string(key_b) + "\"\n"
      "  passphrase_file: e2e.pass\n"
      "udp:\n  idle_timeout: 30s\n  max_flows: 16\n"
      "udp_forwards:\n  - \"5353:127.0.0.1:53\"\n  - \"*:5000:[fd00::9]:5000\"\n",
      "c.yaml");
  INFO((c ? "" : c.error().to_string()));
  REQUIRE(c);
  CHECK(c->e2e.pins.size() == 2);
  CHECK(c->e2e.pins.at("home") == key_a);
  CHECK(c->e2e.pins.at("office-2") == key_b);
  CHECK(c->e2e.passphrase_file == "e2e.pass");
  CHECK(c->udp.idle_timeout == 30s);
  CHECK(c->udp.max_flows == 16);
  REQUIRE(c->udp_forwards.size() == 2);
  CHECK(c->udp_forwards[0].to_string() == "127.0.0.1:5353:127.0.0.1:53");
  CHECK(c->udp_forwards[1].bind == "0.0.0.0");
  CHECK(c->udp_forwards[1].host == "fd00::9");
  CHECK(c->forwards.empty());

  auto d = nl::config::parse_client("e2e:\n  pins:\n", "c.yaml");
  REQUIRE(d);
  CHECK(d->e2e.pins.empty());
  CHECK(d->udp.max_flows == 256);
}

TEST_CASE("e2e, udp and time/client rule errors: line and message", "[config][e2e]") {
  const std::string a(key_a);
  // clang-format off
  const error_case cases[] = {
      {"pin not a key", 'c', "agent: home\ne2e:\n  pins:\n    home: nl1:short\n", 4,
       "the pin for agent 'home' is not an agent public key"},
      {"pin padding bits", 'c', "e2e:\n  pins:\n    home: " + a.substr(0, a.size() - 1) + "B\n", 3,
       "agent 'home'"},
      {"pin name not an agent name", 'c', "e2e:\n  pins:\n    home: " + a + "\n    \"my agent\": " + a + "\n", 4,
       "'my agent' under e2e.pins is not an agent name"},
      {"pin twice", 'c', "e2e:\n  pins:\n    home: " + a + "\n    home: " + a + "\n", 4,
       "agent 'home' is pinned twice (first at line 3)"},
      {"pins a list", 'c', "e2e:\n  pins: [" + a + "]\n", 2, "'pins' must be a map of agent names to keys"},
      {"pin a list", 'c', "e2e:\n  pins:\n    home: [" + a + "]\n", 3, "must be one key like"},
      {"agent key under client", 'c', "e2e:\n  key_file: x.key\n", 2, "unknown key 'key_file'"},
      {"pins under agent", 'a', "e2e:\n  pins: {}\n", 2, "unknown key 'pins'"},
      {"require not bool", 'a', "e2e:\n  require: sometimes\n", 2, "'require' must be true or false"},
      {"empty key_file", 'a', "e2e:\n  key_file: \"\"\n", 2, "'key_file' is empty"},
      {"e2e key at top", 'a', "require: true\n", 1, "it belongs under 'e2e:'"},
      {"udp key at top", 'c', "max_flows: 5\n", 1, "it belongs under 'udp:'"},
      {"udp_forwards in agent", 'a', "udp_forwards: []\n", 1, "is a setting of nl-client, not nl-agent"},
      {"idle_timeout zero", 'a', "udp:\n  idle_timeout: 0s\n", 2, "'idle_timeout' must be more than 0"},
      {"max_flows zero", 'c', "udp:\n  max_flows: 0\n", 2, "'max_flows' is 0; pick a number from 1 to 65536"},
      {"max_flows huge", 'a', "udp:\n  max_flows: 100000\n", 2, "pick a number from 1 to 65536"},
      {"bad udp forward", 'c', "udp_forwards:\n  - \"5353:127.0.0.1:53\"\n  - \"5353\"\n", 3,
       "'5353' is not a forward; write [bind:]port:host:hostport, e.g. 5353:127.0.0.1:53"},
      // policy: time windows and clients name the rule and the line
      {"bad days", 'a', "policy:\n  rules:\n    - allow: { cidr: 10.0.0.0/8 }\n    - deny: { days: \"mon-frx\" }\n", 4,
       "rule 2: 'mon-frx' is not a list of days"},
      {"bad hours in list", 'a', "policy:\n  rules:\n    - allow:\n        hours:\n          - \"08:00-12:00\"\n          - \"13:00-25:00\"\n", 6,
       "rule 1: '13:00-25:00' is not an hours range"},
      {"empty hours range", 'a', "policy:\n  rules:\n    - allow: { hours: \"08:00-08:00\" }\n", 3,
       "empty range; for the whole day write 00:00-24:00"},
      {"unknown tz", 'a', "policy:\n  rules:\n    - allow:\n        hours: \"8-18\"\n        tz: Europe/Berln\n", 5,
       "rule 1: 'Europe/Berln' is not a time zone known here; did you mean 'Europe/Berlin'?"},
      {"tz alone", 'a', "policy:\n  rules:\n    - allow:\n        cidr: 10.0.0.0/8\n        tz: Europe/Berlin\n", 3,
       "rule 1: tz=Europe/Berlin alone changes nothing"},
      {"tz a list", 'a', "policy:\n  rules:\n    - allow: { hours: \"8-9\", tz: [UTC] }\n", 3,
       "'tz' must be a single value like Europe/Berlin"},
      {"bad client", 'a', "policy:\n  rules:\n    - allow:\n        clients:\n          - alice\n          - \"team:ops\"\n", 6,
       "rule 1: 'team:ops' is not a client"},
      {"client singular", 'a', "policy:\n  rules:\n    - allow: { client: alice }\n", 3,
       "unknown key 'client'; did you mean 'clients'?"},
      {"empty clients", 'a', "policy:\n  rules:\n    - allow: { clients: [] }\n", 3, "'clients' is empty"},
  };
  // clang-format on
  for (const auto& c : cases) {
    INFO(c.what << "\n" << c.yaml);
    std::optional<nl::config::config_error> e;
    if (c.program == 'a') {
      auto r = nl::config::parse_agent(c.yaml, "t.yaml");
      if (!r) e = r.error();
    } else {
      auto r = nl::config::parse_client(c.yaml, "t.yaml");
      if (!r) e = r.error();
    }
    REQUIRE(e);
    INFO(e->to_string());
    CHECK(e->line == c.line);
    CHECK_THAT(e->message, Catch::Contains(std::string(c.says)));
  }
}

TEST_CASE("policy rules with time windows and clients", "[config][acl]") {
  auto a = nl::config::parse_agent(
      "policy:\n"
      "  default: deny\n"
      "  rules:\n"
      "    - allow: { cidr: 10.0.0.0/8, days: mon-fri, hours: 08:00-18:00, tz: Europe/Berlin, clients: [alice, group:ops] }\n"
      "    - deny:\n"
      "        ports: \"22\"\n"
      "        days: [fri]\n"
      "        hours: [\"22:00-06:00\"]\n"
      "    - allow: { hours: [\"8-12\", \"13-17\"] }\n",
      "p.yaml");
  INFO((a ? "" : a.error().to_string()));
  REQUIRE(a);
  const auto& r = a->policy.rules;
  REQUIRE(r.size() == 3);
  CHECK(r[0].label ==
        "rule 1 at line 4 (allow cidr 10.0.0.0/8 days mon-fri hours 08:00-18:00 tz Europe/Berlin client alice,group:ops)");
  CHECK(r[0].clients == std::vector<std::string>{"alice", "group:ops"});
  REQUIRE(r[0].times.size() == 1);
  CHECK(r[0].times[0] == nl::acl::time_window{0x1f, 480, 1080, "Europe/Berlin"});
  CHECK(r[1].label == "rule 2 at line 5 (deny ports 22 days fri hours 22:00-06:00)");
  CHECK(r[1].times[0].tz == "UTC");  // no tz: UTC
  CHECK(r[2].times.size() == 2);

  // Wed 2026-01-14 09:00 UTC = 10:00 in Berlin.
  nl::acl::query q;
  q.port = 443;
  q.client = "bob";
  std::vector<std::string> groups{"ops"};
  q.groups = groups;
  q.now = std::chrono::sys_days{std::chrono::year{2026} / 1 / 14} + std::chrono::hours{9};
  CHECK(nl::acl::check_address(a->policy, q, boost::asio::ip::make_address("10.1.2.3")).reason == r[0].label);
  q.client = "carol";
  q.groups = {};
  CHECK(nl::acl::check_address(a->policy, q, boost::asio::ip::make_address("10.1.2.3")).reason == r[2].label);
}

TEST_CASE("load: e2e files are relative to the config file", "[config][files][e2e]") {
  auto dir = std::filesystem::temp_directory_path() / ("nl-e2e-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  auto a = nl::config::load_agent(write("etc/nl-agent.yaml", "e2e:\n  passphrase_file: ../pass\n"));
  REQUIRE(a);
  CHECK(a->e2e.key_file == (dir / "etc" / "nl-agent.key").string());  // the default, next to the config
  CHECK(a->e2e.passphrase_file == (dir / "pass").string());
  auto abs = nl::config::load_agent(write("etc/abs.yaml", "e2e: { key_file: /var/lib/nl/a.key }\n"));
  REQUIRE(abs);
  CHECK(abs->e2e.key_file == "/var/lib/nl/a.key");
  CHECK(abs->e2e.passphrase_file.empty());
  auto c = nl::config::load_client(write("etc/nl-client.yaml", "e2e: { passphrase_file: p.txt }\n"));
  REQUIRE(c);
  CHECK(c->e2e.passphrase_file == (dir / "etc" / "p.txt").string());
  // Without a config file the default stays relative: the working directory.
  auto none = nl::config::load_agent("");
  REQUIRE(none);
  CHECK(none->e2e.key_file == "nl-agent.key");
  std::filesystem::remove_all(dir);
}

TEST_CASE("validate re-checks e2e, udp and forwards set after loading", "[config][e2e]") {
  nl::config::client_config c;
  c.peer.gateway = "wss://gw";
  c.peer.token_file = "/t";
  CHECK_FALSE(nl::config::validate(c));
  c.e2e.pins["home"] = "nl1:nope";
  auto e = nl::config::validate(c);
  REQUIRE(e);
  CHECK(e->line == 0);
  CHECK_THAT(e->message, Catch::Contains("agent 'home'"));
  c.e2e.pins["home"] = std::string(key_a);
  CHECK_FALSE(nl::config::validate(c));
  c.udp.max_flows = 0;
  CHECK_THAT(nl::config::validate(c)->message, Catch::Contains("max_flows"));
  c.udp.max_flows = 1;
  c.udp_forwards.push_back({});
  CHECK_THAT(nl::config::validate(c)->message, Catch::Contains("has no target"));

  nl::config::agent_config a;
  a.peer.gateway = "wss://gw";
  a.peer.token = "t";
  CHECK_FALSE(nl::config::validate(a));
  a.e2e.key_file.clear();
  CHECK_THAT(nl::config::validate(a)->message, Catch::Contains("'key_file' is empty"));
  a.e2e.key_file = "k";
  a.udp.idle_timeout = 0s;
  CHECK_THAT(nl::config::validate(a)->message, Catch::Contains("'idle_timeout' must be more than 0"));
}
