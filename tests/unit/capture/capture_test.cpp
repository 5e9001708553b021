// The capture engine without a device: packets go in through input(), what it emits is
// collected, and the open function answers per destination port. Checks the honest
// connects (refused -> RST, denied -> ICMP prohibited, accepted -> lwIP's SYN-ACK through
// the NAT), RSTs for unknown flows, the flow cap, and DNS answers with fake addresses.
#include "netstack/capture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "common/async.hpp"
#include "netstack/dns.hpp"
#include "netstack/packet.hpp"

namespace {

using namespace nl;
using namespace nl::netstack;

// Reads block until reset; writes are swallowed.
class idle_stream final : public transport::stream {
public:
  explicit idle_stream(const asio::any_io_executor& ex) : ev_(ex) {}
  std::uint32_t id() const noexcept override { return 1; }
  awaitable<result<bytes>> read() override {
    while (!reset_) co_await ev_.wait();
    co_return fail(errc::aborted);
  }
  awaitable<error_code> write(bytes) override { co_return error_code{}; }
  awaitable<error_code> shutdown_send() override { co_return error_code{}; }
  void reset(errc, std::string_view) override {
    reset_ = true;
    ev_.notify();
  }
  const std::string& error_message() const noexcept override { return msg_; }

private:
  async_event ev_;
  bool reset_ = false;
  std::string msg_;
};

const ip_address app = ip_address::from_v4(0xC613FFFE);     // 198.19.255.254
const ip_address target = ip_address::from_v4(0x0A010203);  // 10.1.2.3

std::vector<std::byte> tcp_packet(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, std::uint32_t seq,
                                  std::uint32_t ack = 0) {
  std::vector<std::byte> p(40 + 4, std::byte{0});
  auto put = [&](std::size_t i, unsigned v) { p[i] = std::byte(static_cast<unsigned char>(v)); };
  auto put16 = [&](std::size_t i, unsigned v) { put(i, v >> 8), put(i + 1, v & 0xff); };
  auto put32 = [&](std::size_t i, std::uint32_t v) { put16(i, v >> 16), put16(i + 2, v & 0xffff); };
  put(0, 0x45);
  put16(2, static_cast<unsigned>(p.size()));
  put(8, 64);
  put(9, 6);
  for (int i = 0; i < 4; ++i) put(12 + i, app.b[i]), put(16 + i, target.b[i]);
  put16(10, checksum_fold(checksum_add(0, std::span<const std::byte>(p).first(20))));
  put16(20, sport);
  put16(22, dport);
  put32(24, seq);
  put32(28, ack);
  put(32, 6 << 4);
  put(33, flags);
  put16(34, 65535);
  put(40, 2), put(41, 4), put16(42, 1460);  // MSS option
  auto info = parse(p);
  REQUIRE(info);
  put16(36, checksum_fold(checksum_add(pseudo_header_partial(*info), std::span<const std::byte>(p).subspan(20))));
  REQUIRE(l4_checksum_ok(p, *parse(p)));
  return p;
}

struct rig {
  asio::io_context io;
  std::vector<std::vector<std::byte>> out;
  std::vector<std::uint16_t> opened;  // destination ports asked for
  std::optional<capture> cap;

  explicit rig(std::size_t max_flows = 16) {
    capture_options o;
    o.max_tcp_flows = max_flows;
    auto ex = io.get_executor();
    cap.emplace(
        ex, o,
        [this, ex](proto::target d) -> awaitable<transport::open_outcome> {
          opened.push_back(d.port);
          transport::open_outcome r;
          if (d.port == 81) {
            r.error = make_error_code(errc::refused);
          } else if (d.port == 82) {
            r.error = make_error_code(errc::denied);
          } else {
            r.stream = std::make_unique<idle_stream>(ex);
          }
          co_return r;
        },
        [this](std::span<const std::byte> p, const gso_request&) { out.emplace_back(p.begin(), p.end()); });
  }
  ~rig() {
    cap->stop();
    io.run_for(std::chrono::milliseconds(50));
  }
  void send(std::vector<std::byte> p) { cap->input(p); }
  // Runs the loop until `n` packets were emitted (bounded).
  const std::vector<std::byte>& wait_out(std::size_t n) {
    for (int i = 0; i < 200 && out.size() < n; ++i) io.run_for(std::chrono::milliseconds(10));
    REQUIRE(out.size() >= n);
    return out[n - 1];
  }
};

}  // namespace

TEST_CASE("a refused destination answers the held SYN with a RST", "[capture]") {
  rig r;
  r.send(tcp_packet(40000, 81, tcpflag::syn, 1000));
  auto& pkt = r.wait_out(1);
  auto info = parse(pkt);
  REQUIRE(info);
  CHECK(info->proto == ipproto::tcp);
  CHECK((info->tcp_flags & tcpflag::rst));
  CHECK(info->src == target);
  CHECK(info->sport == 81);
  CHECK(info->dst == app);
  CHECK(info->dport == 40000);
  CHECK(info->ack == 1001);
  CHECK(l4_checksum_ok(pkt, *info));
  CHECK(r.cap->stats().tcp_flows == 0);
}

TEST_CASE("a denied destination answers with ICMP administratively prohibited", "[capture]") {
  rig r;
  r.send(tcp_packet(40001, 82, tcpflag::syn, 5));
  auto info = parse(r.wait_out(1));
  REQUIRE(info);
  CHECK(info->proto == ipproto::icmp);
  CHECK(std::to_integer<int>(r.out[0][info->l4_offset]) == 3);       // destination unreachable
  CHECK(std::to_integer<int>(r.out[0][info->l4_offset + 1]) == 13);  // administratively prohibited
}

TEST_CASE("an accepted destination gets lwIP's SYN-ACK back through the NAT, once the agent answered", "[capture]") {
  rig r;
  r.send(tcp_packet(40002, 80, tcpflag::syn, 7000));
  auto& pkt = r.wait_out(1);
  REQUIRE(r.opened == std::vector<std::uint16_t>{80});
  auto info = parse(pkt);
  REQUIRE(info);
  CHECK(info->tcp_flags == (tcpflag::syn | tcpflag::ack));
  CHECK(info->src == target);
  CHECK(info->sport == 80);
  CHECK(info->dst == app);
  CHECK(info->dport == 40002);
  CHECK(info->ack == 7001);
  CHECK(l4_checksum_ok(pkt, *info));
  // A retransmitted SYN does not open a second stream.
  r.send(tcp_packet(40002, 80, tcpflag::syn, 7000));
  r.io.run_for(std::chrono::milliseconds(20));
  CHECK(r.opened.size() == 1);
  CHECK(r.cap->stats().tcp_flows == 1);
}

TEST_CASE("a segment of no known flow gets a RST", "[capture]") {
  rig r;
  r.send(tcp_packet(40003, 80, tcpflag::ack, 1, 99));
  auto info = parse(r.wait_out(1));
  REQUIRE(info);
  CHECK((info->tcp_flags & tcpflag::rst));
  CHECK(info->seq == 99);
  CHECK(r.opened.empty());
}

TEST_CASE("beyond max_tcp_flows new SYNs are refused without asking the agent", "[capture]") {
  rig r(2);
  r.send(tcp_packet(41000, 80, tcpflag::syn, 1));
  r.send(tcp_packet(41001, 80, tcpflag::syn, 1));
  r.wait_out(2);  // two SYN-ACKs
  r.send(tcp_packet(41002, 80, tcpflag::syn, 1));
  auto info = parse(r.wait_out(3));
  REQUIRE(info);
  CHECK((info->tcp_flags & tcpflag::rst));
  CHECK(info->dport == 41002);
  CHECK(r.opened.size() == 2);
}

TEST_CASE("A and AAAA queries are answered at once with fake addresses", "[capture]") {
  rig r;
  // dig-like query for web.lan A, id 0x1234, RD
  std::vector<std::byte> q;
  for (int b : std::initializer_list<int>{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'e', 'b', 3, 'l', 'a', 'n', 0, 0, 1, 0, 1}) {
    q.push_back(std::byte(b));
  }
  std::vector<std::byte> pkt(20 + 8 + q.size());
  auto n = build_udp(app, 5353, ip_address::from_v4(0x0A010235), 53, q, pkt);
  REQUIRE(n == pkt.size());
  r.send(pkt);
  auto& ans = r.wait_out(1);
  auto info = parse(ans);
  REQUIRE(info);
  CHECK(info->proto == ipproto::udp);
  CHECK(info->sport == 53);
  CHECK(info->dport == 5353);
  auto payload = std::span<const std::byte>(ans).subspan(info->payload_offset, info->payload_length);
  REQUIRE(payload.size() >= q.size() + 16);
  CHECK(std::to_integer<int>(payload[0]) == 0x12);
  CHECK(std::to_integer<int>(payload[7]) == 1);  // one answer
  // the address at the end: inside 198.19.0.0/17
  auto a = payload.last(4);
  CHECK(std::to_integer<int>(a[0]) == 198);
  CHECK(std::to_integer<int>(a[1]) == 19);
  CHECK(std::to_integer<int>(a[2]) < 128);
  CHECK(r.opened.empty());  // nothing went to the agent
}

TEST_CASE("multicast and broadcast datagrams are not carried", "[capture]") {
  rig r;
  std::vector<std::byte> payload(10, std::byte{1});
  for (auto dst : {ip_address::from_v4(0xE00000FB), ip_address::from_v4(0xFFFFFFFF)}) {  // mDNS, broadcast
    std::vector<std::byte> pkt(20 + 8 + payload.size());
    REQUIRE(build_udp(app, 5353, dst, 5353, payload, pkt) == pkt.size());
    r.send(pkt);
  }
  r.io.run_for(std::chrono::milliseconds(20));
  CHECK(r.opened.empty());
  CHECK(r.out.empty());
  CHECK(r.cap->stats().udp_flows == 0);
}
