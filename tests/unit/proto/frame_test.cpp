#include "proto/frame.hpp"

#include <catch2/catch.hpp>

#include "bytes_of.hpp"

#include <cstring>
#include <string_view>

using namespace nl::proto;
using nl::errc;

namespace {

using proto_test::bytes_of;

std::vector<std::byte> header(int type, int flags, int reserved, std::uint32_t id, std::uint32_t len) {
  return bytes_of({type, flags, reserved >> 8, reserved & 0xff, static_cast<int>(id >> 24),
                   static_cast<int>((id >> 16) & 0xff), static_cast<int>((id >> 8) & 0xff),
                   static_cast<int>(id & 0xff), static_cast<int>(len >> 24), static_cast<int>((len >> 16) & 0xff),
                   static_cast<int>((len >> 8) & 0xff), static_cast<int>(len & 0xff)});
}

// Parses exactly one whole frame from `wire` and checks its header.
frame_view one_frame(const std::vector<std::byte>& wire, frame_type t, std::uint32_t id) {
  auto r = parse_frame(wire);
  REQUIRE(r.status == parse_status::ok);
  REQUIRE(r.frame.consumed == wire.size());
  CHECK(r.frame.header.type == t);
  CHECK(r.frame.header.stream_id == id);
  CHECK(r.frame.header.flags == 0);
  CHECK(r.frame.header.length == wire.size() - frame_header_size);
  return r.frame;
}

// Whether the decoder for `t` accepts `p`.
bool decodes(frame_type t, std::span<const std::byte> p) {
  switch (t) {
    case frame_type::hello: return decode_hello(p).has_value();
    case frame_type::open: return decode_open(p).has_value();
    case frame_type::open_result: return decode_open_result(p).has_value();
    case frame_type::window: return decode_window(p).has_value();
    case frame_type::reset: return decode_reset(p).has_value();
    case frame_type::ping:
    case frame_type::pong: return decode_ping(p).has_value();
    case frame_type::goaway: return decode_goaway(p).has_value();
    case frame_type::data:
    case frame_type::fin: return true;
  }
  return false;
}

}  // namespace

TEST_CASE("hello round-trips", "[frame]") {
  hello_body b;
  b.keepalive_ms = 25'000;
  b.max_streams = 1024;
  b.identity = "acme/laptop";
  b.info = "nl-gateway 0.1.0";
  std::vector<std::byte> wire;
  append_hello(wire, b);
  auto f = one_frame(wire, frame_type::hello, 0);
  auto d = decode_hello(f.payload);
  REQUIRE(d);
  CHECK(d->version == protocol_version);
  CHECK(d->keepalive_ms == 25'000);
  CHECK(d->max_streams == 1024);
  CHECK(d->identity == "acme/laptop");
  CHECK(d->info == "nl-gateway 0.1.0");
}

TEST_CASE("open round-trips with and without an envelope", "[frame]") {
  SECTION("plain tcp target") {
    open_body b;
    b.window = 256 * 1024;
    b.dest = {"example.com", 443, transport_protocol::tcp};
    b.peer = "home";
    std::vector<std::byte> wire;
    append_open(wire, 7, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 7).payload);
    REQUIRE(d);
    CHECK(d->window == b.window);
    CHECK(d->dest.host == "example.com");
    CHECK(d->dest.port == 443);
    CHECK(d->dest.protocol == transport_protocol::tcp);
    CHECK(d->peer == "home");
    CHECK(d->envelope.empty());
  }
  SECTION("udp to an IPv6 literal") {
    open_body b;
    b.window = 1;
    b.dest = {"2001:db8::1", 53, transport_protocol::udp};
    std::vector<std::byte> wire;
    append_open(wire, 0xffffffff, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 0xffffffff).payload);
    REQUIRE(d);
    CHECK(d->dest.host == "2001:db8::1");
    CHECK(d->dest.protocol == transport_protocol::udp);
    CHECK(d->peer.empty());
  }
  SECTION("e2e envelope hides the target") {
    open_body b;
    b.window = 65536;
    b.peer = "acme/laptop";
    b.dest.protocol = transport_protocol::hidden;
    b.envelope = bytes_of({1, 2, 3, 0, 255});
    std::vector<std::byte> wire;
    append_open(wire, 3, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 3).payload);
    REQUIRE(d);
    CHECK(d->dest.host.empty());
    CHECK(d->dest.port == 0);
    CHECK(d->envelope == b.envelope);
  }
}

TEST_CASE("open carries groups and the token policy", "[frame]") {
  open_body b;
  b.window = 2 * 1024 * 1024;
  b.dest = {"nas.lan", 445, transport_protocol::tcp};
  b.peer = "acme/alice";
  b.groups = {"ops", "dev-team", std::string(64, 'g'), "A.b_9"};
  b.policy = R"({"default":"deny","rules":[{"allow":{"cidr":["10.0.0.0/8"],"ports":"22"}}]})";
  std::vector<std::byte> wire;
  append_open(wire, 11, b);
  auto d = decode_open(one_frame(wire, frame_type::open, 11).payload);
  REQUIRE(d);
  CHECK(d->dest.host == "nas.lan");
  CHECK(d->dest.port == 445);
  CHECK(d->peer == "acme/alice");
  CHECK(d->groups == b.groups);
  CHECK(d->policy == b.policy);
  CHECK(d->envelope.empty());

  SECTION("the groups and policy are the last fields, in this order") {
    // ... | envlen(2)=0 | count(1)=4 | 3 "ops" | 8 "dev-team" | 64 g... | 5 "A.b_9" | policylen(2) | policy
    auto payload = one_frame(wire, frame_type::open, 11).payload;
    auto tail = payload.last(2 + b.policy.size());
    CHECK(std::to_integer<std::size_t>(tail[0]) * 256 + std::to_integer<std::size_t>(tail[1]) == b.policy.size());
    std::size_t groups_at = 4 + 1 + 2 + 1 + b.dest.host.size() + 1 + b.peer.size() + 2;
    CHECK(std::to_integer<int>(payload[groups_at]) == 4);
    CHECK(std::to_integer<int>(payload[groups_at + 1]) == 3);
    CHECK(std::to_integer<char>(payload[groups_at + 2]) == 'o');
  }
}

TEST_CASE("open with a hidden protocol needs an envelope", "[frame]") {
  open_body b;
  b.window = 65536;
  b.dest = {"", 0, transport_protocol::hidden};
  b.peer = "home";
  b.envelope = bytes_of({0x01, 0xaa, 0xbb, 0xcc});
  b.groups = {"ops"};
  b.policy = R"({"default":"allow"})";
  SECTION("round trip with the envelope") {
    std::vector<std::byte> wire;
    append_open(wire, 5, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 5).payload);
    REQUIRE(d);
    CHECK(d->dest.protocol == transport_protocol::hidden);
    CHECK(d->dest.host.empty());
    CHECK(d->dest.port == 0);
    CHECK(d->envelope == b.envelope);
    CHECK(d->groups == b.groups);
    CHECK(d->policy == b.policy);
  }
  SECTION("without an envelope it is malformed") {
    b.envelope.clear();
    std::vector<std::byte> wire;
    append_open(wire, 5, b);
    CHECK_FALSE(decode_open(one_frame(wire, frame_type::open, 5).payload));
    // ... even when a complete target is present.
    b.dest.host = "example.com";
    b.dest.port = 80;
    wire.clear();
    append_open(wire, 5, b);
    CHECK_FALSE(decode_open(one_frame(wire, frame_type::open, 5).payload));
    // The same target with a visible protocol is fine.
    b.dest.protocol = transport_protocol::udp;
    wire.clear();
    append_open(wire, 5, b);
    CHECK(decode_open(one_frame(wire, frame_type::open, 5).payload));
  }
}

TEST_CASE("open rejects bad group names", "[frame]") {
  auto decodes_with = [](std::vector<std::string> groups) {
    open_body b{4096, {"10.1.2.3", 22, transport_protocol::tcp}, "acme/bob", {}};
    b.groups = std::move(groups);
    std::vector<std::byte> wire;
    append_open(wire, 1, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 1).payload);
    if (d) CHECK(d->groups == b.groups);
    return d.has_value();
  };
  CHECK(decodes_with({}));
  CHECK(decodes_with({"ops"}));
  CHECK(decodes_with({"a", "B", "0", ".", "_", "-", std::string(64, 'z')}));
  std::vector<std::string> many;
  for (int i = 0; i < 255; ++i) many.push_back("g" + std::to_string(i));
  CHECK(decodes_with(many));

  CHECK_FALSE(decodes_with({""}));
  CHECK_FALSE(decodes_with({std::string(65, 'z')}));
  CHECK_FALSE(decodes_with({"ops", "bad group"}));
  CHECK_FALSE(decodes_with({"group:ops"}));
  CHECK_FALSE(decodes_with({"a/b"}));
  CHECK_FALSE(decodes_with({"ops\n"}));
  CHECK_FALSE(decodes_with({"caf\xc3\xa9"}));
  CHECK_FALSE(decodes_with({std::string("o\0s", 3)}));

  SECTION("a group count larger than the groups present") {
    // window | tcp | port 22 | "h" | peer "" | env "" | count 2 | "a" | policy ""
    CHECK(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 'h', 0, 0, 0, 1, 1, 'a', 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 'h', 0, 0, 0, 2, 1, 'a', 0, 0})));
  }
}

TEST_CASE("open rejects a policy with control characters", "[frame]") {
  auto decodes_with = [](std::string policy) {
    open_body b{4096, {"example.com", 443, transport_protocol::tcp}, "acme/bob", {}};
    b.policy = std::move(policy);
    std::vector<std::byte> wire;
    append_open(wire, 1, b);
    auto d = decode_open(one_frame(wire, frame_type::open, 1).payload);
    if (d) CHECK(d->policy == b.policy);
    return d.has_value();
  };
  CHECK(decodes_with(R"({"default":"deny","rules":[{"deny":{"domain":["*.corp"]}}]})"));
  CHECK(decodes_with("{\"a\":\t1}"));  // tab is allowed in text fields
  CHECK_FALSE(decodes_with("{\n\"default\":\"deny\"}"));
  CHECK_FALSE(decodes_with("{\"default\":\"deny\"}\r"));
  CHECK_FALSE(decodes_with(std::string("{}\0", 3)));
  CHECK_FALSE(decodes_with("\x1b[31m{}"));
}

TEST_CASE("open_result carries the acceptor's envelope", "[frame]") {
  std::vector<std::byte> env;
  for (int i = 0; i < 300; ++i) env.push_back(static_cast<std::byte>(i * 7));
  SECTION("accepted") {
    std::vector<std::byte> wire;
    append_open_result(wire, 13, {errc::ok, 65536, "", env});
    auto d = decode_open_result(one_frame(wire, frame_type::open_result, 13).payload);
    REQUIRE(d);
    CHECK(d->code == errc::ok);
    CHECK(d->window == 65536);
    CHECK(d->envelope == env);
  }
  SECTION("refused, with a generic message and the sealed verdict") {
    std::vector<std::byte> wire;
    append_open_result(wire, 13, {errc::denied, 0, "refused (details are end-to-end encrypted)", env});
    auto d = decode_open_result(one_frame(wire, frame_type::open_result, 13).payload);
    REQUIRE(d);
    CHECK(d->code == errc::denied);
    CHECK(d->message == "refused (details are end-to-end encrypted)");
    CHECK(d->envelope == env);
  }
  SECTION("an envelope length past the end is malformed") {
    // code 0 | window 1 | msg "" | envlen 5 | 3 bytes
    CHECK(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 3, 9, 9, 9})));
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 5, 9, 9, 9})));
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 9})));
    // Half an envelope length.
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0})));
    // Bytes after the envelope.
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9})));
  }
}

TEST_CASE("open_result, window, fin, reset, ping, pong, goaway round-trip", "[frame]") {
  std::vector<std::byte> wire;
  SECTION("open_result accepted") {
    append_open_result(wire, 9, {errc::ok, 131072, ""});
    auto d = decode_open_result(one_frame(wire, frame_type::open_result, 9).payload);
    REQUIRE(d);
    CHECK(d->code == errc::ok);
    CHECK(d->window == 131072);
    CHECK(d->message.empty());
  }
  SECTION("open_result refused") {
    append_open_result(wire, 9, {errc::denied, 0, "rule deny cidr=10.0.0.0/8"});
    auto d = decode_open_result(one_frame(wire, frame_type::open_result, 9).payload);
    REQUIRE(d);
    CHECK(d->code == errc::denied);
    CHECK(d->message == "rule deny cidr=10.0.0.0/8");
  }
  SECTION("window") {
    append_window(wire, 5, 4096);
    auto d = decode_window(one_frame(wire, frame_type::window, 5).payload);
    REQUIRE(d);
    CHECK(*d == 4096);
  }
  SECTION("fin") {
    append_fin(wire, 5);
    CHECK(one_frame(wire, frame_type::fin, 5).payload.empty());
  }
  SECTION("reset") {
    append_reset(wire, 11, {errc::refused, "connection refused"});
    auto d = decode_reset(one_frame(wire, frame_type::reset, 11).payload);
    REQUIRE(d);
    CHECK(d->code == errc::refused);
    CHECK(d->message == "connection refused");
  }
  SECTION("ping and pong") {
    append_ping(wire, frame_type::ping, 0x0102030405060708ull);
    append_ping(wire, frame_type::pong, 0xffffffffffffffffull);
    auto r1 = parse_frame(wire);
    REQUIRE(r1.status == parse_status::ok);
    CHECK(r1.frame.header.type == frame_type::ping);
    CHECK(decode_ping(r1.frame.payload) == 0x0102030405060708ull);
    auto rest = std::span<const std::byte>(wire).subspan(r1.frame.consumed);
    auto r2 = parse_frame(rest);
    REQUIRE(r2.status == parse_status::ok);
    CHECK(r2.frame.header.type == frame_type::pong);
    CHECK(r2.frame.consumed == rest.size());
    CHECK(decode_ping(r2.frame.payload) == 0xffffffffffffffffull);
  }
  SECTION("goaway") {
    append_goaway(wire, {goaway_code::replaced, "newer session"});
    auto d = decode_goaway(one_frame(wire, frame_type::goaway, 0).payload);
    REQUIRE(d);
    CHECK(d->code == goaway_code::replaced);
    CHECK(d->message == "newer session");
  }
}

TEST_CASE("data header", "[frame]") {
  auto h = data_header(42, 1000);
  std::vector<std::byte> wire(h.begin(), h.end());
  wire.resize(wire.size() + 1000, std::byte{0xab});
  auto f = one_frame(wire, frame_type::data, 42);
  CHECK(f.payload.size() == 1000);
  CHECK(f.payload.data() == wire.data() + frame_header_size);
}

TEST_CASE("encoders append to existing content", "[frame]") {
  std::vector<std::byte> wire = bytes_of({0xee});
  append_window(wire, 1, 1);
  REQUIRE(wire.size() == 1 + frame_header_size + 4);
  auto r = parse_frame(std::span<const std::byte>(wire).subspan(1));
  REQUIRE(r.status == parse_status::ok);
  CHECK(decode_window(r.frame.payload) == 1u);
}

TEST_CASE("parse_frame reports incomplete input", "[frame]") {
  std::vector<std::byte> wire;
  append_reset(wire, 1, {errc::aborted, "x"});
  for (std::size_t n = 0; n < wire.size(); ++n) {
    CAPTURE(n);
    auto r = parse_frame(std::span<const std::byte>(wire).first(n));
    CHECK(r.status == parse_status::incomplete);
  }
  CHECK(parse_frame(wire).status == parse_status::ok);
  // The largest allowed DATA header is accepted before its payload arrives.
  CHECK(parse_frame(header(0x04, 0, 0, 1, max_data_payload)).status == parse_status::incomplete);
  CHECK(parse_frame(header(0x01, 0, 0, 0, max_control_payload)).status == parse_status::incomplete);
}

TEST_CASE("parse_frame rejects malformed headers", "[frame]") {
  struct row {
    const char* what;
    std::vector<std::byte> wire;
    std::string_view error;
  };
  std::vector<row> rows = {
      {"type 0", header(0x00, 0, 0, 1, 0), "unknown frame type"},
      {"type 0x0b", header(0x0b, 0, 0, 1, 0), "unknown frame type"},
      {"type 0xff", header(0xff, 0, 0, 0, 0), "unknown frame type"},
      {"flags", header(0x04, 0x01, 0, 1, 0), "reserved bits set"},
      {"high flag", header(0x06, 0x80, 0, 1, 0), "reserved bits set"},
      {"reserved low", header(0x04, 0, 0x0001, 1, 0), "reserved bits set"},
      {"reserved high", header(0x04, 0, 0x8000, 1, 0), "reserved bits set"},
      {"open on stream 0", header(0x02, 0, 0, 0, 0), "stream id does not fit the frame type"},
      {"open_result on stream 0", header(0x03, 0, 0, 0, 0), "stream id does not fit the frame type"},
      {"data on stream 0", header(0x04, 0, 0, 0, 0), "stream id does not fit the frame type"},
      {"window on stream 0", header(0x05, 0, 0, 0, 4), "stream id does not fit the frame type"},
      {"fin on stream 0", header(0x06, 0, 0, 0, 0), "stream id does not fit the frame type"},
      {"reset on stream 0", header(0x07, 0, 0, 0, 0), "stream id does not fit the frame type"},
      {"hello on a stream", header(0x01, 0, 0, 1, 0), "stream id does not fit the frame type"},
      {"ping on a stream", header(0x08, 0, 0, 2, 8), "stream id does not fit the frame type"},
      {"pong on a stream", header(0x09, 0, 0, 3, 8), "stream id does not fit the frame type"},
      {"goaway on a stream", header(0x0a, 0, 0, 0x80000000u, 0), "stream id does not fit the frame type"},
      {"data too large", header(0x04, 0, 0, 1, max_data_payload + 1), "frame payload too large"},
      {"data length 2^32-1", header(0x04, 0, 0, 1, 0xffffffffu), "frame payload too large"},
      {"open too large", header(0x02, 0, 0, 1, max_control_payload + 1), "frame payload too large"},
      {"hello too large", header(0x01, 0, 0, 0, max_control_payload + 1), "frame payload too large"},
      {"window too large", header(0x05, 0, 0, 1, max_data_payload), "frame payload too large"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    auto res = parse_frame(r.wire);
    CHECK(res.status == parse_status::malformed);
    REQUIRE(res.error != nullptr);
    CHECK(std::string_view(res.error) == r.error);
  }
}

TEST_CASE("decoders reject truncated payloads and trailing bytes", "[frame]") {
  std::vector<std::pair<frame_type, std::vector<std::byte>>> frames;
  auto add = [&](frame_type t, auto&& encode) {
    std::vector<std::byte> w;
    encode(w);
    auto r = parse_frame(w);
    REQUIRE(r.status == parse_status::ok);
    frames.emplace_back(t, std::vector<std::byte>(r.frame.payload.begin(), r.frame.payload.end()));
  };
  add(frame_type::hello, [](auto& w) { append_hello(w, {1, 1000, 10, "t/n", "info"}); });
  add(frame_type::open, [](auto& w) {
    append_open(w, 1, {4096, {"host.lan", 22, transport_protocol::tcp}, "peer", {}});
  });
  add(frame_type::open, [](auto& w) { append_open(w, 1, {4096, {"10.0.0.1", 80, transport_protocol::tcp}, "", {}}); });
  add(frame_type::open, [](auto& w) {
    open_body b{4096, {"", 0, transport_protocol::hidden}, "acme/laptop", bytes_of({1, 2, 3})};
    b.groups = {"ops", "a.b_c-d"};
    b.policy = R"({"default":"deny"})";
    append_open(w, 1, b);
  });
  add(frame_type::open_result, [](auto& w) { append_open_result(w, 1, {errc::timeout, 0, "slow"}); });
  add(frame_type::open_result, [](auto& w) { append_open_result(w, 1, {errc::ok, 9, "", bytes_of({5, 6, 7})}); });
  add(frame_type::window, [](auto& w) { append_window(w, 1, 77); });
  add(frame_type::reset, [](auto& w) { append_reset(w, 1, {errc::internal, "bug"}); });
  add(frame_type::ping, [](auto& w) { append_ping(w, frame_type::ping, 5); });
  add(frame_type::goaway, [](auto& w) { append_goaway(w, {goaway_code::overloaded, ""}); });

  for (const auto& [t, payload] : frames) {
    CAPTURE(static_cast<int>(t));
    REQUIRE(decodes(t, payload));
    for (std::size_t n = 0; n < payload.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(decodes(t, std::span<const std::byte>(payload).first(n)));
    }
    auto longer = payload;
    longer.push_back(std::byte{0});
    CHECK_FALSE(decodes(t, longer));
  }
}

TEST_CASE("decoders reject invalid field values", "[frame]") {
  SECTION("hello version 0") {
    CHECK_FALSE(decode_hello(bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0})));
    CHECK(decode_hello(bytes_of({1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0})));
  }
  SECTION("hello with a control character in the identity") {
    CHECK_FALSE(decode_hello(bytes_of({1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, '\n', 0, 0})));
    CHECK(decode_hello(bytes_of({1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'a', 0, 0})));
  }
  // open: window(4) proto(1) port(2) hostlen(1) host peerlen(1) peer envlen(2) env
  //       groupcount(1) (len(1) group)* policylen(2) policy
  SECTION("open fields") {
    CHECK(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 'h', 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 0, 0, 1, 0, 22, 1, 'h', 0, 0, 0, 0, 0, 0})));  // window 0
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 0, 0, 22, 1, 'h', 0, 0, 0, 0, 0, 0})));  // hidden, no envelope
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 3, 0, 22, 1, 'h', 0, 0, 0, 0, 0, 0})));  // protocol 3
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 0, 1, 'h', 0, 0, 0, 0, 0, 0})));   // port 0
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 0, 0, 0, 0, 0, 0, 0})));       // no host
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, ' ', 0, 0, 0, 0, 0, 0})));  // space
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, '/', 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, '@', 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, '[', 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 0x80, 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 'h', 1, 0x01, 0, 0, 0, 0, 0})));  // peer ctl
    // With an envelope the destination is hidden completely: protocol 0, no host, port 0.
    CHECK(decode_open(bytes_of({0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0})));
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0})));   // protocol shown
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 0, 0, 22, 0, 0, 0, 1, 7, 0, 0, 0})));  // port shown
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 0, 0, 0, 1, 'h', 0, 0, 1, 7, 0, 0, 0})));  // host shown
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 0, 1, ' ', 0, 0, 1, 7, 0, 0, 0})));
    // Without the group count and policy length (the layout before e2e) it is truncated.
    CHECK_FALSE(decode_open(bytes_of({0, 0, 1, 0, 1, 0, 22, 1, 'h', 0, 0, 0})));
  }
  // open_result: code(1) window(4) msglen(2) msg envlen(2) env
  SECTION("open_result codes") {
    CHECK(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 0, 0, 0, 0, 0})));  // ok without a window
    CHECK(decode_open_result(bytes_of({63, 0, 0, 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open_result(bytes_of({64, 0, 0, 0, 0, 0, 0, 0, 0})));
    CHECK_FALSE(decode_open_result(bytes_of({6, 0, 0, 0, 0, 0, 1, 0x1b, 0, 0})));
    CHECK(decode_open_result(bytes_of({6, 0, 0, 0, 0, 0, 1, '\t', 0, 0})));
    // Without the envelope length (the layout before e2e) it is truncated.
    CHECK_FALSE(decode_open_result(bytes_of({0, 0, 0, 0, 1, 0, 0})));
  }
  SECTION("window 0") {
    CHECK_FALSE(decode_window(bytes_of({0, 0, 0, 0})));
    CHECK(decode_window(bytes_of({0xff, 0xff, 0xff, 0xff})) == 0xffffffffu);
  }
  SECTION("reset codes") {
    CHECK_FALSE(decode_reset(bytes_of({0, 0, 0})));
    CHECK(decode_reset(bytes_of({1, 0, 0})));
    CHECK_FALSE(decode_reset(bytes_of({64, 0, 0})));
  }
  SECTION("goaway codes") {
    CHECK(decode_goaway(bytes_of({5, 0, 0})));
    CHECK_FALSE(decode_goaway(bytes_of({6, 0, 0})));
  }
}

TEST_CASE("valid_host", "[frame]") {
  CHECK(valid_host("example.com"));
  CHECK(valid_host("::1"));
  CHECK(valid_host(std::string(255, 'a')));
  CHECK_FALSE(valid_host(std::string(256, 'a')));
  CHECK_FALSE(valid_host(""));
  CHECK_FALSE(valid_host("a b"));
  CHECK_FALSE(valid_host(std::string_view("a\0b", 3)));
  CHECK_FALSE(valid_host("[::1]"));
  CHECK_FALSE(valid_host("user@host"));
  CHECK_FALSE(valid_host("a/b"));
  CHECK_FALSE(valid_host("caf\xc3\xa9"));
}

TEST_CASE("goaway codes have descriptions", "[frame]") {
  CHECK(std::string_view(describe(goaway_code::replaced)).find("replaced") != std::string_view::npos);
  CHECK(std::string_view(describe(static_cast<goaway_code>(99))) == "unknown reason");
}
