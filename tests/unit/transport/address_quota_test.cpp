// address_quota: the per-source cap on places a listener gives to connections that are
// not a session yet.
#include "transport/address_quota.hpp"

#include <catch2/catch.hpp>

using nl::transport::address_quota;
using boost::asio::ip::make_address;

TEST_CASE("address_quota caps each address on its own", "[quota]") {
  address_quota q(2);
  auto a = make_address("192.0.2.1");
  auto b = make_address("192.0.2.2");
  CHECK(q.try_take(a));
  CHECK(q.try_take(a));
  CHECK_FALSE(q.try_take(a));
  CHECK(q.held(a) == 2);
  CHECK(q.try_take(b));  // another address is not counted against a
  CHECK(q.sources() == 2);
  CHECK(q.total() == 3);
  q.give_back(a);
  CHECK(q.try_take(a));
  CHECK_FALSE(q.try_take(a));
}

TEST_CASE("address_quota forgets an address that holds nothing", "[quota]") {
  address_quota q(3);
  auto a = make_address("2001:db8::1");
  CHECK(q.try_take(a));
  CHECK(q.try_take(a));
  q.give_back(a);
  q.give_back(a);
  CHECK(q.sources() == 0);
  CHECK(q.held(a) == 0);
  q.give_back(a);  // more than taken: no underflow, nothing remembered
  CHECK(q.sources() == 0);
  CHECK(q.total() == 0);
  CHECK(q.try_take(a));
  CHECK(q.held(a) == 1);
}

TEST_CASE("address_quota counts an IPv6 /64 as one source", "[quota]") {
  address_quota q(2);
  CHECK(q.try_take(make_address("2001:db8:0:1::1")));
  CHECK(q.try_take(make_address("2001:db8:0:1:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(q.try_take(make_address("2001:db8:0:1:1234::9")));  // same /64
  CHECK(q.try_take(make_address("2001:db8:0:2::1")));             // the next /64
  CHECK(q.sources() == 2);
}

TEST_CASE("address_quota: an IPv4-mapped IPv6 address is its IPv4 address", "[quota]") {
  address_quota q(1);
  CHECK(q.try_take(make_address("198.51.100.7")));
  CHECK_FALSE(q.try_take(make_address("::ffff:198.51.100.7")));
  CHECK(q.try_take(make_address("::ffff:198.51.100.8")));  // mapped addresses are not grouped by /64
  q.give_back(make_address("::ffff:198.51.100.7"));
  CHECK(q.held(make_address("198.51.100.7")) == 0);
}

TEST_CASE("address_quota with cap 0 only counts", "[quota]") {
  address_quota q(0);
  auto a = make_address("127.0.0.1");
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(q.try_take(a));
  }
  CHECK(q.held(a) == 1000);
}
