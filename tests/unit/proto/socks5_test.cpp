#include "proto/socks5.hpp"

#include <catch2/catch.hpp>

#include "bytes_of.hpp"

#include <string_view>

using namespace nl::proto;
using namespace nl::proto::socks5;
using nl::errc;

namespace {

using proto_test::bytes_of;

std::vector<std::byte> cat(std::vector<std::byte> a, std::string_view s, std::vector<std::byte> b = {}) {
  for (char c : s) a.push_back(static_cast<std::byte>(c));
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

template <class Parse>
void check_incomplete_prefixes(const std::vector<std::byte>& msg, Parse parse) {
  for (std::size_t n = 0; n < msg.size(); ++n) {
    CAPTURE(n);
    CHECK(parse(std::span<const std::byte>(msg).first(n)).status == parse_status::incomplete);
  }
}

}  // namespace

TEST_CASE("greeting", "[socks5]") {
  SECTION("valid, with trailing bytes left alone") {
    auto msg = bytes_of({5, 2, 0, 2});
    check_incomplete_prefixes(msg, parse_greeting);
    msg.push_back(std::byte{1});  // start of the next message
    auto r = parse_greeting(msg);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.consumed == 4);
    CHECK(r.methods == std::vector<std::uint8_t>{0, 2});
  }
  SECTION("255 methods") {
    std::vector<std::byte> msg = bytes_of({5, 255});
    for (int i = 0; i < 255; ++i) msg.push_back(static_cast<std::byte>(i));
    auto r = parse_greeting(msg);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.methods.size() == 255);
    CHECK(r.consumed == 257);
  }
  SECTION("malformed") {
    for (auto msg : {bytes_of({4, 1, 0}), bytes_of({0x47, 0x45, 0x54}), bytes_of({5, 0}),
                     bytes_of({5, 0, 0})}) {
      auto r = parse_greeting(msg);
      CHECK(r.status == parse_status::malformed);
      CHECK(r.error != nullptr);
    }
  }
}

TEST_CASE("method selection", "[socks5]") {
  std::vector<std::uint8_t> both{0, 2}, none_only{0}, up_only{2}, gss{1};
  CHECK(select_method(both, false) == method::no_auth);
  CHECK(select_method(both, true) == method::userpass);
  CHECK(select_method(none_only, true) == method::none_acceptable);
  CHECK(select_method(up_only, false) == method::none_acceptable);
  CHECK(select_method(gss, false) == method::none_acceptable);
  CHECK(method_selection(method::userpass) == std::array{std::byte{5}, std::byte{2}});
  CHECK(method_selection(method::none_acceptable) == std::array{std::byte{5}, std::byte{0xff}});
}

TEST_CASE("username/password sub-negotiation", "[socks5]") {
  SECTION("valid") {
    auto msg = cat(cat(bytes_of({1, 5}), "alice", bytes_of({6})), "s3cr:t");
    check_incomplete_prefixes(msg, parse_userpass);
    msg.push_back(std::byte{5});
    auto r = parse_userpass(msg);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.user == "alice");
    CHECK(r.pass == "s3cr:t");
    CHECK(r.consumed == msg.size() - 1);
  }
  SECTION("empty fields are passed on, binary bytes kept") {
    auto r = parse_userpass(bytes_of({1, 0, 2, 0, 0xff}));
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.user.empty());
    CHECK(r.pass == std::string("\0\xff", 2));
  }
  SECTION("wrong version") {
    auto r = parse_userpass(bytes_of({5, 1, 'a', 1, 'b'}));
    CHECK(r.status == parse_status::malformed);
  }
  CHECK(userpass_status(true) == std::array{std::byte{1}, std::byte{0}});
  CHECK(userpass_status(false) == std::array{std::byte{1}, std::byte{1}});
}

TEST_CASE("request parsing", "[socks5]") {
  struct row {
    const char* what;
    std::vector<std::byte> msg;
    command cmd;
    std::string host;
    std::uint16_t port;
  };
  std::vector<row> rows = {
      {"ipv4 connect", bytes_of({5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}), command::connect, "127.0.0.1", 8080},
      {"ipv6 connect", bytes_of({5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22}),
       command::connect, "2001:db8::1", 22},
      {"v4-mapped v6", bytes_of({5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3, 0, 80}),
       command::connect, "::ffff:10.1.2.3", 80},
      {"domain", cat(bytes_of({5, 1, 0, 3, 11}), "example.com", bytes_of({1, 0xbb})), command::connect,
       "example.com", 443},
      {"udp associate from any", bytes_of({5, 3, 0, 1, 0, 0, 0, 0, 0, 0}), command::udp_associate, "0.0.0.0",
       0},
      {"bind", bytes_of({5, 2, 0, 1, 10, 0, 0, 1, 0xff, 0xff}), command::bind, "10.0.0.1", 65535},
      {"nonzero RSV is ignored", bytes_of({5, 1, 7, 1, 1, 2, 3, 4, 0, 1}), command::connect, "1.2.3.4", 1},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    check_incomplete_prefixes(r.msg, parse_request);
    auto with_data = r.msg;
    with_data.push_back(std::byte{'G'});  // optimistic data after the request
    auto res = parse_request(with_data);
    REQUIRE(res.status == parse_status::ok);
    CHECK(res.cmd == r.cmd);
    CHECK(res.dest.host == r.host);
    CHECK(res.dest.port == r.port);
    CHECK(res.dest.protocol ==
          (r.cmd == command::udp_associate ? transport_protocol::udp : transport_protocol::tcp));
    CHECK(res.consumed == r.msg.size());
  }
}

TEST_CASE("request rejection carries the reply code", "[socks5]") {
  struct row {
    const char* what;
    std::vector<std::byte> msg;
    std::uint8_t reply;
  };
  std::vector<row> rows = {
      {"version 4", bytes_of({4, 1, 0, 1, 1, 2, 3, 4, 0, 80}), rep::general_failure},
      {"command 0", bytes_of({5, 0}), rep::command_not_supported},
      {"command 4", bytes_of({5, 4, 0, 1}), rep::command_not_supported},
      {"command 0xff", bytes_of({5, 0xff}), rep::command_not_supported},
      {"atyp 0", bytes_of({5, 1, 0, 0}), rep::address_type_not_supported},
      {"atyp 2", bytes_of({5, 1, 0, 2, 1, 2, 3, 4, 0, 80}), rep::address_type_not_supported},
      {"atyp 5", bytes_of({5, 1, 0, 5}), rep::address_type_not_supported},
      {"empty domain", bytes_of({5, 1, 0, 3, 0, 0, 80}), rep::general_failure},
      {"NUL in domain", bytes_of({5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80}), rep::general_failure},
      {"newline in domain", bytes_of({5, 1, 0, 3, 2, 'a', '\n', 0, 80}), rep::general_failure},
      {"DEL in domain", bytes_of({5, 1, 0, 3, 2, 'a', 0x7f, 0, 80}), rep::general_failure},
      {"space in domain", bytes_of({5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80}), rep::general_failure},
      {"connect to port 0", bytes_of({5, 1, 0, 1, 1, 2, 3, 4, 0, 0}), rep::general_failure},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    auto res = parse_request(r.msg);
    CHECK(res.status == parse_status::malformed);
    CHECK(res.reply == r.reply);
    CHECK(res.error != nullptr);
  }
  auto atyp = parse_request(bytes_of({5, 1, 0, 9}));
  CHECK(std::string_view(atyp.error) == "address type not supported");
}

TEST_CASE("replies", "[socks5]") {
  CHECK(reply(rep::succeeded) == bytes_of({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
  boost::asio::ip::tcp::endpoint v4(boost::asio::ip::make_address("192.168.1.2"), 1080);
  CHECK(reply(rep::connection_refused, &v4) == bytes_of({5, 5, 0, 1, 192, 168, 1, 2, 0x04, 0x38}));
  boost::asio::ip::tcp::endpoint v6(boost::asio::ip::make_address("::1"), 443);
  CHECK(reply(rep::succeeded, &v6) ==
        bytes_of({5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb}));
}

TEST_CASE("reply codes for stream outcomes", "[socks5]") {
  CHECK(reply_code(errc::ok) == 0x00);
  CHECK(reply_code(errc::refused) == 0x05);
  CHECK(reply_code(errc::net_unreachable) == 0x03);
  CHECK(reply_code(errc::no_agent) == 0x03);
  CHECK(reply_code(errc::host_unreachable) == 0x04);
  CHECK(reply_code(errc::timeout) == 0x04);
  CHECK(reply_code(errc::dns_failure) == 0x04);
  CHECK(reply_code(errc::denied) == 0x02);
  CHECK(reply_code(errc::unsupported) == 0x07);
  for (auto e : {errc::protocol, errc::internal, errc::aborted, errc::limit, errc::bad_request,
                 errc::session_closed, errc::not_connected, errc::auth_failed, errc::stream_closed}) {
    CHECK(reply_code(e) == 0x01);
  }
}

TEST_CASE("UDP datagram header", "[socks5]") {
  SECTION("parse ipv4 with payload") {
    auto d = bytes_of({0, 0, 0, 1, 8, 8, 8, 8, 0, 53, 0xde, 0xad});
    auto r = parse_udp_header(d);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.dest.host == "8.8.8.8");
    CHECK(r.dest.port == 53);
    CHECK(r.dest.protocol == transport_protocol::udp);
    CHECK(r.payload_offset == 10);
  }
  SECTION("parse domain with empty payload") {
    auto d = cat(bytes_of({0, 0, 0, 3, 7}), "dns.lan", bytes_of({0, 53}));
    auto r = parse_udp_header(d);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.dest.host == "dns.lan");
    CHECK(r.payload_offset == d.size());
  }
  SECTION("fragments are refused") {
    auto r = parse_udp_header(bytes_of({0, 0, 1, 1, 8, 8, 8, 8, 0, 53, 0}));
    CHECK(r.status == parse_status::malformed);
    CHECK(std::string_view(r.error).find("fragment") != std::string_view::npos);
  }
  SECTION("truncated and unknown headers") {
    auto whole = bytes_of({0, 0, 0, 1, 8, 8, 8, 8, 0, 53});
    for (std::size_t n = 0; n < whole.size(); ++n) {
      CAPTURE(n);
      CHECK(parse_udp_header(std::span<const std::byte>(whole).first(n)).status == parse_status::malformed);
    }
    CHECK(parse_udp_header(bytes_of({0, 0, 0, 2, 1, 1, 1, 1, 0, 1})).status == parse_status::malformed);
    CHECK(parse_udp_header(bytes_of({0, 0, 0, 3, 0, 0, 1})).status == parse_status::malformed);
  }
  SECTION("append round-trips and picks the address type") {
    struct row {
      std::string host;
      int atyp_byte;
    };
    for (const auto& r : std::vector<row>{{"10.1.2.3", 1},
                                          {"2001:db8::53", 4},
                                          {"::ffff:1.2.3.4", 4},
                                          {"example.org", 3},
                                          {"010.1.2.3", 3},  // not canonical: sent as a name
                                          {"2001:DB8::1", 3},
                                          {"fe80::1%1", 3}}) {
      CAPTURE(r.host);
      std::vector<std::byte> out = bytes_of({0xaa});
      REQUIRE(append_udp_header(out, {r.host, 5353, transport_protocol::udp}));
      CHECK(std::to_integer<int>(out[4]) == r.atyp_byte);
      out.push_back(std::byte{0x42});
      auto p = parse_udp_header(std::span<const std::byte>(out).subspan(1));
      REQUIRE(p.status == parse_status::ok);
      CHECK(p.dest.host == r.host);
      CHECK(p.dest.port == 5353);
      CHECK(p.payload_offset == out.size() - 2);
    }
  }
  SECTION("append refuses unencodable hosts") {
    std::vector<std::byte> out;
    CHECK_FALSE(append_udp_header(out, {"", 1, transport_protocol::udp}));
    CHECK_FALSE(append_udp_header(out, {std::string(256, 'a'), 1, transport_protocol::udp}));
    CHECK(out.empty());
  }
}
