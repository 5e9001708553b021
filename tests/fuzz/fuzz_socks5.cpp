// Runs every SOCKS5 parser on the input and checks what they promise: consumed stays
// inside the input, a complete message is incomplete one byte shorter, parsed hosts are
// valid nl hosts, and UDP headers round-trip through append_udp_header.
#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/socks5.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::proto;
using namespace nl::proto::socks5;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

  auto g = parse_greeting(in);
  if (g.status == parse_status::ok) {
    NL_FUZZ_CHECK(g.consumed <= in.size() && g.consumed == 2 + g.methods.size() && !g.methods.empty());
    NL_FUZZ_CHECK(parse_greeting(in.first(g.consumed - 1)).status == parse_status::incomplete);
    auto m = select_method(g.methods, data[size - 1] & 1);
    NL_FUZZ_CHECK(m == method::no_auth || m == method::userpass || m == method::none_acceptable);
  } else if (g.status == parse_status::malformed) {
    NL_FUZZ_CHECK(g.error != nullptr);
  }

  auto u = parse_userpass(in);
  if (u.status == parse_status::ok) {
    NL_FUZZ_CHECK(u.consumed <= in.size() && u.consumed == 3 + u.user.size() + u.pass.size());
    NL_FUZZ_CHECK(parse_userpass(in.first(u.consumed - 1)).status == parse_status::incomplete);
  }

  auto r = parse_request(in);
  if (r.status == parse_status::ok) {
    NL_FUZZ_CHECK(r.consumed <= in.size());
    NL_FUZZ_CHECK(valid_host(r.dest.host));
    NL_FUZZ_CHECK(r.cmd != command::connect || r.dest.port != 0);
    NL_FUZZ_CHECK(parse_request(in.first(r.consumed - 1)).status == parse_status::incomplete);
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(r.dest.host, ec);
    if (!ec) {
      boost::asio::ip::tcp::endpoint ep(addr, r.dest.port);
      auto rep = reply(rep::succeeded, &ep);
      NL_FUZZ_CHECK(rep.size() == (addr.is_v4() ? 10u : 22u));
    }
  } else if (r.status == parse_status::malformed) {
    NL_FUZZ_CHECK(r.error != nullptr);
    NL_FUZZ_CHECK(r.reply == rep::general_failure || r.reply == rep::command_not_supported ||
                  r.reply == rep::address_type_not_supported);
  }

  auto h = parse_udp_header(in);
  if (h.status == parse_status::ok) {
    NL_FUZZ_CHECK(h.payload_offset <= in.size());
    NL_FUZZ_CHECK(valid_host(h.dest.host));
    std::vector<std::byte> out;
    NL_FUZZ_CHECK(append_udp_header(out, h.dest));
    auto h2 = parse_udp_header(out);
    NL_FUZZ_CHECK(h2.status == parse_status::ok && h2.dest.host == h.dest.host && h2.dest.port == h.dest.port &&
                  h2.payload_offset == out.size());
  } else {
    NL_FUZZ_CHECK(h.error != nullptr);
  }

  if (size > 0) {
    (void)reply_code(static_cast<nl::errc>(data[0]));
    (void)reply(data[0]);
  }
  return 0;
}
