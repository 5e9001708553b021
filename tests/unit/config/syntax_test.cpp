// Small value syntaxes: forwards and gateway URLs.
#include "config/config.hpp"

#include <catch2/catch.hpp>

TEST_CASE("parse_forward", "[config]") {
  struct ok_case {
    std::string_view in;
    std::string_view bind;
    std::uint16_t port;
    std::string_view host;
    std::uint16_t host_port;
  };
  const ok_case ok[] = {
      {"8080:intranet.lan:80", "127.0.0.1", 8080, "intranet.lan", 80},
      {"0:db:5432", "127.0.0.1", 0, "db", 5432},
      {"0.0.0.0:8080:10.0.0.5:80", "0.0.0.0", 8080, "10.0.0.5", 80},
      {"*:8080:h:80", "0.0.0.0", 8080, "h", 80},
      {":8080:h:80", "0.0.0.0", 8080, "h", 80},
      {"[::1]:2222:[fd00::5]:22", "::1", 2222, "fd00::5", 22},
      {"2222:[fe80::1]:22", "127.0.0.1", 2222, "fe80::1", 22},
      {"localhost:1:h:65535", "localhost", 1, "h", 65535},
  };
  for (const auto& c : ok) {
    INFO(c.in);
    auto f = nl::config::parse_forward(c.in);
    REQUIRE(f);
    CHECK(f->bind == c.bind);
    CHECK(f->port == c.port);
    CHECK(f->host == c.host);
    CHECK(f->host_port == c.host_port);
  }
  CHECK(nl::config::parse_forward("[::1]:2222:[fd00::5]:22")->to_string() == "[::1]:2222:[fd00::5]:22");
  for (std::string_view bad : {"", "8080", "8080:h", "8080:h:0", "8080:h:65536", "70000:h:80", "a:h:80",
                               "8080::80", "8080:fd00::5:22", "[::1:2222:h:22", "8080:[h]:22", "1:2:3:4:5",
                               "8080:h:80:", "[::1]x:1:h:2", "8080:h o:80", "8080:h:-1"}) {
    INFO(bad);
    CHECK_FALSE(nl::config::parse_forward(bad));
  }
}

TEST_CASE("parse_gateway_url", "[config]") {
  struct ok_case {
    std::string_view in;
    bool tls;
    std::string_view host;
    std::uint16_t port;
    std::string_view prefix;
  };
  const ok_case ok[] = {
      {"wss://gw.example.com", true, "gw.example.com", 443, ""},
      {"WSS://gw.example.com/", true, "gw.example.com", 443, ""},
      {"ws://127.0.0.1:8080", false, "127.0.0.1", 8080, ""},
      {"ws://localhost", false, "localhost", 80, ""},
      {"wss://[::1]:4443/nl/", true, "::1", 4443, "/nl"},
      {"wss://gw.example.com/a/b", true, "gw.example.com", 443, "/a/b"},
  };
  for (const auto& c : ok) {
    INFO(c.in);
    auto u = nl::config::parse_gateway_url(c.in);
    REQUIRE(u);
    CHECK(u->tls == c.tls);
    CHECK(u->host == c.host);
    CHECK(u->port == c.port);
    CHECK(u->prefix == c.prefix);
  }
  CHECK(nl::config::parse_gateway_url("wss://[::1]:4443/nl/")->to_string() == "wss://[::1]:4443/nl");
  CHECK(nl::config::parse_gateway_url("ws://h:80")->to_string() == "ws://h");
  for (std::string_view bad : {"", "gw.example.com", "https://gw", "http://gw", "wss://", "wss://:443",
                               "wss://gw:", "wss://gw:0", "wss://gw:65536", "wss://gw:x", "wss://::1/",
                               "wss://[::1", "wss://[::1]x", "wss://u@gw", "wss://gw/?a=b", "wss://gw/#f",
                               "wss://g w"}) {
    INFO(bad);
    CHECK_FALSE(nl::config::parse_gateway_url(bad));
  }
}

TEST_CASE("valid_log_level", "[config]") {
  for (std::string_view l : {"trace", "debug", "info", "warn", "error", "off"}) {
    CHECK(nl::config::valid_log_level(l));
  }
  CHECK_FALSE(nl::config::valid_log_level("INFO"));
  CHECK_FALSE(nl::config::valid_log_level("verbose"));
}
