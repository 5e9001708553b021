#include "proto/socks5.hpp"

#include <algorithm>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>

namespace nl::proto::socks5 {
namespace {

std::uint8_t at(std::span<const std::byte> in, std::size_t i) {
  return std::to_integer<std::uint8_t>(in[i]);
}

std::string text(std::span<const std::byte> in, std::size_t off, std::size_t n) {
  return {reinterpret_cast<const char*>(in.data() + off), n};
}

void push(std::vector<std::byte>& out, std::uint8_t v) { out.push_back(static_cast<std::byte>(v)); }

void push_port(std::vector<std::byte>& out, std::uint16_t port) {
  push(out, static_cast<std::uint8_t>(port >> 8));
  push(out, static_cast<std::uint8_t>(port & 0xff));
}

// ATYP | DST.ADDR | DST.PORT starting at `off`, shared by requests and UDP datagrams.
struct address_result {
  parse_status status = parse_status::incomplete;
  std::string host;
  std::uint16_t port = 0;
  std::size_t end = 0;  // offset just past DST.PORT
  std::uint8_t reply = rep::general_failure;
  const char* error = nullptr;
};

address_result parse_address(std::span<const std::byte> in, std::size_t off) {
  address_result r;
  auto bad = [&](std::uint8_t reply_code, const char* why) {
    r.status = parse_status::malformed;
    r.reply = reply_code;
    r.error = why;
    return r;
  };
  if (in.size() <= off) {
    return r;
  }
  std::size_t addr = off + 1;  // first byte of DST.ADDR
  std::size_t addr_len = 0;
  switch (at(in, off)) {
    case atyp::ipv4:
      addr_len = 4;
      break;
    case atyp::ipv6:
      addr_len = 16;
      break;
    case atyp::domain:
      if (in.size() <= addr) {
        return r;
      }
      addr_len = at(in, addr);
      if (addr_len == 0) {
        return bad(rep::general_failure, "empty domain name");
      }
      ++addr;  // skip the length byte
      break;
    default:
      return bad(rep::address_type_not_supported, "address type not supported");
  }
  if (in.size() - addr < addr_len + 2) {
    return r;
  }
  switch (at(in, off)) {
    case atyp::ipv4: {
      boost::asio::ip::address_v4::bytes_type b;
      for (std::size_t i = 0; i < 4; ++i) b[i] = at(in, addr + i);
      r.host = boost::asio::ip::address_v4(b).to_string();
      break;
    }
    case atyp::ipv6: {
      boost::asio::ip::address_v6::bytes_type b;
      for (std::size_t i = 0; i < 16; ++i) b[i] = at(in, addr + i);
      r.host = boost::asio::ip::address_v6(b).to_string();
      break;
    }
    default:
      r.host = text(in, addr, addr_len);
      // Stricter than "no NUL or control characters": the host goes into an OPEN frame,
      // whose receiver applies the same valid_host check.
      if (!valid_host(r.host)) {
        return bad(rep::general_failure, "invalid characters in domain name");
      }
      break;
  }
  std::size_t p = addr + addr_len;
  r.port = static_cast<std::uint16_t>((at(in, p) << 8) | at(in, p + 1));
  r.end = p + 2;
  r.status = parse_status::ok;
  return r;
}

}  // namespace

greeting_result parse_greeting(std::span<const std::byte> in) {
  greeting_result r;
  auto bad = [&](const char* why) {
    r.status = parse_status::malformed;
    r.error = why;
    return r;
  };
  if (in.empty()) {
    return r;
  }
  if (at(in, 0) != version) {
    return bad("not a SOCKS5 greeting (version is not 5)");
  }
  if (in.size() < 2) {
    return r;
  }
  std::size_t n = at(in, 1);
  if (n == 0) {
    return bad("SOCKS5 greeting offers no authentication method");
  }
  if (in.size() - 2 < n) {
    return r;
  }
  r.methods.reserve(n);
  for (std::size_t i = 0; i < n; ++i) r.methods.push_back(at(in, 2 + i));
  r.consumed = 2 + n;
  r.status = parse_status::ok;
  return r;
}

std::uint8_t select_method(std::span<const std::uint8_t> offered, bool userpass_required) noexcept {
  auto want = userpass_required ? method::userpass : method::no_auth;
  if (std::find(offered.begin(), offered.end(), want) != offered.end()) {
    return want;
  }
  return method::none_acceptable;
}

userpass_result parse_userpass(std::span<const std::byte> in) {
  userpass_result r;
  if (in.empty()) {
    return r;
  }
  if (at(in, 0) != userpass_version) {
    r.status = parse_status::malformed;
    r.error = "unsupported username/password sub-negotiation version";
    return r;
  }
  if (in.size() < 2) {
    return r;
  }
  std::size_t ulen = at(in, 1);
  std::size_t plen_at = 2 + ulen;
  if (in.size() <= plen_at) {
    return r;
  }
  std::size_t plen = at(in, plen_at);
  if (in.size() - plen_at - 1 < plen) {
    return r;
  }
  r.user = text(in, 2, ulen);
  r.pass = text(in, plen_at + 1, plen);
  r.consumed = plen_at + 1 + plen;
  r.status = parse_status::ok;
  return r;
}

request_result parse_request(std::span<const std::byte> in) {
  request_result r;
  auto bad = [&](std::uint8_t reply_code, const char* why) {
    r.status = parse_status::malformed;
    r.reply = reply_code;
    r.error = why;
    return r;
  };
  if (in.empty()) {
    return r;
  }
  if (at(in, 0) != version) {
    return bad(rep::general_failure, "not a SOCKS5 request (version is not 5)");
  }
  if (in.size() < 2) {
    return r;
  }
  auto cmd = at(in, 1);
  if (cmd < 0x01 || cmd > 0x03) {
    return bad(rep::command_not_supported, "command not supported");
  }
  r.cmd = static_cast<command>(cmd);
  // Byte 2 is RSV; RFC 1928 says X'00' but its value carries no meaning, so it is ignored.
  auto a = parse_address(in, 3);
  if (a.status == parse_status::incomplete) {
    return r;
  }
  if (a.status == parse_status::malformed) {
    return bad(a.reply, a.error);
  }
  if (r.cmd == command::connect && a.port == 0) {
    return bad(rep::general_failure, "destination port 0");
  }
  r.dest.host = std::move(a.host);
  r.dest.port = a.port;
  r.dest.protocol = r.cmd == command::udp_associate ? transport_protocol::udp : transport_protocol::tcp;
  r.consumed = a.end;
  r.status = parse_status::ok;
  return r;
}

std::array<std::byte, 2> method_selection(std::uint8_t chosen) noexcept {
  return {std::byte{version}, std::byte{chosen}};
}

std::array<std::byte, 2> userpass_status(bool ok) noexcept {
  return {std::byte{userpass_version}, ok ? std::byte{0x00} : std::byte{0x01}};
}

std::vector<std::byte> reply(std::uint8_t rep, const boost::asio::ip::tcp::endpoint* bound) {
  std::vector<std::byte> out;
  out.reserve(22);
  push(out, version);
  push(out, rep);
  push(out, 0x00);
  if (bound != nullptr && bound->address().is_v6()) {
    push(out, atyp::ipv6);
    for (auto b : bound->address().to_v6().to_bytes()) push(out, b);
  } else {
    push(out, atyp::ipv4);
    boost::asio::ip::address_v4::bytes_type b{};
    if (bound != nullptr) {
      b = bound->address().to_v4().to_bytes();
    }
    for (auto v : b) push(out, v);
  }
  push_port(out, bound != nullptr ? bound->port() : 0);
  return out;
}

std::uint8_t reply_code(nl::errc e) noexcept {
  switch (e) {
    case errc::ok: return rep::succeeded;
    case errc::refused: return rep::connection_refused;
    case errc::net_unreachable:
    case errc::no_agent: return rep::network_unreachable;
    case errc::host_unreachable:
    case errc::timeout:
    case errc::dns_failure: return rep::host_unreachable;
    case errc::denied: return rep::not_allowed;
    case errc::unsupported: return rep::command_not_supported;
    default: return rep::general_failure;
  }
}

udp_header_result parse_udp_header(std::span<const std::byte> datagram) {
  udp_header_result r;
  r.dest.protocol = transport_protocol::udp;
  if (datagram.size() < 4) {
    r.error = "datagram shorter than a SOCKS5 UDP header";
    return r;
  }
  // Bytes 0-1 are RSV (ignored, as in requests).
  if (at(datagram, 2) != 0) {
    r.error = "fragmented SOCKS5 UDP datagrams are not supported";
    return r;
  }
  auto a = parse_address(datagram, 3);
  if (a.status == parse_status::incomplete) {
    r.error = "truncated SOCKS5 UDP header";
    return r;
  }
  if (a.status == parse_status::malformed) {
    r.error = a.error;
    return r;
  }
  r.dest.host = std::move(a.host);
  r.dest.port = a.port;
  r.payload_offset = a.end;
  r.status = parse_status::ok;
  return r;
}

bool append_udp_header(std::vector<std::byte>& out, const target& from) {
  const auto& host = from.host;
  if (host.empty() || host.size() > 255) {
    return false;
  }
  out.insert(out.end(), {std::byte{0}, std::byte{0}, std::byte{0}});
  // Only canonical literals go out as binary addresses, so parse(append(t)) gives back
  // exactly t.host; anything else (including "010.1.1.1") is passed on as a name.
  boost::system::error_code ec;
  auto v4 = boost::asio::ip::make_address_v4(host, ec);
  if (!ec && v4.to_string() == host) {
    push(out, atyp::ipv4);
    for (auto b : v4.to_bytes()) push(out, b);
    push_port(out, from.port);
    return true;
  }
  ec.clear();
  auto v6 = boost::asio::ip::make_address_v6(host, ec);
  if (!ec && v6.scope_id() == 0 && v6.to_string() == host) {
    push(out, atyp::ipv6);
    for (auto b : v6.to_bytes()) push(out, b);
    push_port(out, from.port);
    return true;
  }
  push(out, atyp::domain);
  push(out, static_cast<std::uint8_t>(host.size()));
  auto p = reinterpret_cast<const std::byte*>(host.data());
  out.insert(out.end(), p, p + host.size());
  push_port(out, from.port);
  return true;
}

}  // namespace nl::proto::socks5
