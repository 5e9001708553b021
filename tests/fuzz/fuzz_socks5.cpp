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
    NL_FUZZ_CHECK(h.dest.protocol == transport_protocol::udp);
    NL_FUZZ_CHECK(data[2] == 0);  // FRAG: fragments are refused
    // RSV(2) FRAG ATYP, then 4 or 16 address bytes or a length byte and a name, then the port.
    auto atyp_byte = data[3];
    NL_FUZZ_CHECK(atyp_byte == atyp::ipv4 || atyp_byte == atyp::ipv6 || atyp_byte == atyp::domain);
    std::size_t expect = atyp_byte == atyp::ipv4 ? 4u + 4 + 2 : atyp_byte == atyp::ipv6 ? 4u + 16 + 2 : 4u + 1 + data[4] + 2;
    NL_FUZZ_CHECK(h.payload_offset == expect);
    NL_FUZZ_CHECK(h.dest.port == ((data[expect - 2] << 8) | data[expect - 1]));
    // A datagram cut inside the header is malformed (datagrams are whole), never ok.
    NL_FUZZ_CHECK(parse_udp_header(in.first(h.payload_offset - 1)).status == parse_status::malformed);
    // The payload is what follows the header, whatever it holds: the same header before
    // other data parses to the same destination.
    std::vector<std::byte> out;
    NL_FUZZ_CHECK(append_udp_header(out, h.dest));
    auto h2 = parse_udp_header(out);
    NL_FUZZ_CHECK(h2.status == parse_status::ok && h2.dest.host == h.dest.host && h2.dest.port == h.dest.port &&
                  h2.payload_offset == out.size());
    out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(h.payload_offset), in.end());
    auto h3 = parse_udp_header(out);
    NL_FUZZ_CHECK(h3.status == parse_status::ok && h3.dest.host == h.dest.host && h3.dest.port == h.dest.port &&
                  out.size() - h3.payload_offset == in.size() - h.payload_offset);
  } else {
    NL_FUZZ_CHECK(h.status == parse_status::malformed);  // no `incomplete` for whole datagrams
    NL_FUZZ_CHECK(h.error != nullptr);
  }

  if (size > 0) {
    (void)reply_code(static_cast<nl::errc>(data[0]));
    (void)reply(data[0]);
  }
  return 0;
}
