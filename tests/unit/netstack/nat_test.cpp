#include "netstack/nat.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <unordered_set>

using namespace nl::netstack;
using namespace std::chrono_literals;

namespace {

ip_address ip(const std::string& s) { return ip_address::from_asio(boost::asio::ip::make_address(s)); }

nat_config config(const std::string& v4 = "198.18.0.1", unsigned v4_prefix = 16, const std::string& v6 = "fd6e:6c00::1",
                  unsigned v6_prefix = 64) {
  nat_config c;
  c.lwip_v4 = ip(v4);
  c.v4_prefix = v4_prefix;
  c.lwip_v6 = ip(v6);
  c.v6_prefix = v6_prefix;
  return c;
}

flow_key key(int n, bool v6 = false) {
  flow_key k;
  k.src = v6 ? ip("fd00::2") : ip("10.0.0.2");
  k.dst = v6 ? ip("2001:db8::1") : ip("93.184.216.34");
  k.sport = static_cast<std::uint16_t>(30000 + n);
  k.dport = 443;
  return k;
}

const nat_clock::time_point t0{};

nat_entry& must_insert(nat_table& t, const flow_key& k, nat_clock::time_point now = t0) {
  auto r = t.insert(k, now);
  REQUIRE(r.has_value());
  REQUIRE(*r != nullptr);
  return **r;
}

std::optional<nat_error> insert_error(nat_table& t, const flow_key& k, nat_clock::time_point now) {
  auto r = t.insert(k, now);
  return r ? std::nullopt : std::optional<nat_error>(r.error());
}

}  // namespace

TEST_CASE("nat: insert and the three lookups", "[nat]") {
  nat_table t(config());
  auto& a = must_insert(t, key(1));
  auto& b = must_insert(t, key(2));
  auto& c = must_insert(t, key(3, true));
  CHECK(t.size() == 3);
  CHECK(a.id != b.id);
  CHECK(b.id != c.id);
  CHECK(a.orig == key(1));
  CHECK(a.last_seen == t0);
  CHECK(!a.closed_at);
  CHECK(!a.fake.v6);
  CHECK(c.fake.v6);
  CHECK(a.fake.to_string() == "198.18.0.2");  // .1 is lwIP itself
  CHECK(b.fake.to_string() == "198.18.0.3");
  CHECK(c.fake.to_string() == "fd6e:6c00::2");

  CHECK(t.find(key(1)) == &a);
  CHECK(t.find(key(3, true)) == &c);
  CHECK(t.find(key(4)) == nullptr);
  CHECK(t.find(key(1, true)) == nullptr);
  CHECK(t.find_fake(b.fake) == &b);
  CHECK(t.find_fake(ip("198.18.0.1")) == nullptr);
  CHECK(t.find_id(c.id) == &c);
  CHECK(t.find_id(999) == nullptr);

  t.touch(a, t0 + 5s);
  CHECK(a.last_seen == t0 + 5s);

  auto id = a.id;
  auto fake = a.fake;
  t.erase(id);
  CHECK(t.size() == 2);
  CHECK(t.find(key(1)) == nullptr);
  CHECK(t.find_fake(fake) == nullptr);
  CHECK(t.find_id(id) == nullptr);
  t.erase(id);  // idempotent
  CHECK(t.size() == 2);
  // Ids are never reused.
  auto& d = must_insert(t, key(1));
  CHECK(d.id > c.id);
}

TEST_CASE("nat: fake addresses are unique and inside the subnet", "[nat]") {
  nat_table t(config("198.18.0.1", 20, "fd6e:6c00::1", 64));
  std::unordered_set<ip_address, ip_address_hash> seen;
  for (int i = 0; i < 1500; ++i) {
    auto& e4 = must_insert(t, key(i));
    auto& e6 = must_insert(t, key(i, true));
    CHECK(seen.insert(e4.fake).second);
    CHECK(seen.insert(e6.fake).second);
    auto h = e4.fake.v4_host();
    CHECK((h & 0xfffff000u) == 0xc6120000u);  // 198.18.0.0/20
    CHECK(h != 0xc6120000u);
    CHECK(h != 0xc6120fffu);
    CHECK(h != 0xc6120001u);
    CHECK(std::equal(e6.fake.b.begin(), e6.fake.b.begin() + 8, ip("fd6e:6c00::").b.begin()));
    CHECK(e6.fake != ip("fd6e:6c00::1"));
    CHECK(e6.fake != ip("fd6e:6c00::"));
  }
  CHECK(t.size() == 3000);
}

TEST_CASE("nat: a /29 pool never hands out network, broadcast or lwIP's address", "[nat]") {
  struct row {
    std::string lwip;
    std::set<std::string> want;
  };
  std::vector<row> rows = {
      {"10.9.0.1", {"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}},
      {"10.9.0.3", {"10.9.0.1", "10.9.0.2", "10.9.0.4", "10.9.0.5", "10.9.0.6"}},
      {"10.9.0.6", {"10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"}},
      {"10.9.0.0", {"10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}},  // misconfigured
  };
  for (const auto& r : rows) {
    INFO("lwip " << r.lwip);
    nat_table t(config(r.lwip, 29));
    std::set<std::string> got;
    for (std::size_t i = 0; i < r.want.size(); ++i) {
      got.insert(must_insert(t, key(static_cast<int>(i))).fake.to_string());
    }
    CHECK(got == r.want);
    auto full = t.insert(key(100), t0);
    REQUIRE(!full);
    CHECK(full.error() == nat_error::no_address);
    CHECK(t.size() == r.want.size());
    // The other family is unaffected.
    must_insert(t, key(100, true));
    // Freeing one address makes room again, and that is the one handed out.
    auto* e = t.find(key(2));
    REQUIRE(e);
    auto freed = e->fake;
    t.erase(e->id);
    CHECK(must_insert(t, key(101)).fake == freed);
  }
}

TEST_CASE("nat: tiny v6 pool", "[nat]") {
  // /126 under fd00::1: offsets 1..3 without lwIP itself.
  nat_table t(config("198.18.0.1", 16, "fd00::1", 126));
  CHECK(must_insert(t, key(1, true)).fake == ip("fd00::2"));
  CHECK(must_insert(t, key(2, true)).fake == ip("fd00::3"));
  auto r = t.insert(key(3, true), t0);
  REQUIRE(!r);
  CHECK(r.error() == nat_error::no_address);
}

TEST_CASE("nat: a family without a subnet has no addresses", "[nat]") {
  nat_config c = config();
  c.lwip_v6 = ip("0.0.0.0");  // no IPv6 configured
  nat_table t(c);
  auto r = t.insert(key(1, true), t0);
  REQUIRE(!r);
  CHECK(r.error() == nat_error::no_address);
  must_insert(t, key(1));
}

TEST_CASE("nat: table_full counts lingering entries", "[nat]") {
  nat_config c = config();
  c.max_flows = 3;
  nat_table t(c);
  auto& a = must_insert(t, key(1));
  must_insert(t, key(2));
  must_insert(t, key(3, true));
  t.linger(a, t0 + 1s);
  auto r = t.insert(key(4), t0 + 2s);
  REQUIRE(!r);
  CHECK(r.error() == nat_error::table_full);
  CHECK(t.size() == 3);
  // Once the linger ends the slot is free again.
  CHECK(t.sweep(t0 + 1s + c.time_wait).empty());
  CHECK(t.size() == 2);
  must_insert(t, key(4), t0 + 20s);
}

TEST_CASE("nat: a closed flow lingers for time_wait", "[nat]") {
  nat_config c = config("198.18.0.1", 29);
  c.time_wait = 15s;
  nat_table t(c);
  auto& e = must_insert(t, key(1));
  auto id = e.id;
  auto fake = e.fake;
  t.linger(e, t0 + 10s);
  t.linger(e, t0 + 20s);  // keeps the first
  REQUIRE(e.closed_at);
  CHECK(*e.closed_at == t0 + 10s);

  CHECK(t.sweep(t0 + 24s).empty());
  CHECK(t.find(key(1)) == &e);
  CHECK(t.find_fake(fake) == &e);
  // While it lingers its address is not handed out.
  for (int i = 2; i <= 5; ++i) {
    CHECK(must_insert(t, key(i), t0 + 24s).fake != fake);
  }
  CHECK(insert_error(t, key(6), t0 + 24s) == nat_error::no_address);

  CHECK(t.sweep(t0 + 25s).empty());  // expired, removed silently
  CHECK(t.find_id(id) == nullptr);
  CHECK(t.find(key(1)) == nullptr);
  CHECK(t.find_fake(fake) == nullptr);
  CHECK(must_insert(t, key(6), t0 + 25s).fake == fake);
}

TEST_CASE("nat: idle flows are swept and reported", "[nat]") {
  nat_config c = config();
  c.idle_timeout = 100s;
  c.time_wait = 15s;
  nat_table t(c);
  auto& a = must_insert(t, key(1));
  auto& b = must_insert(t, key(2));
  auto& d = must_insert(t, key(3, true));
  auto& l = must_insert(t, key(4));
  auto ida = a.id, idb = b.id, idd = d.id, idl = l.id;
  t.touch(b, t0 + 50s);
  t.linger(l, t0 + 90s);

  CHECK(t.sweep(t0 + 99s).empty());
  CHECK(t.size() == 4);
  // a and d are idle; l lingers (its time_wait has not run out), b was touched.
  auto gone = t.sweep(t0 + 100s);
  CHECK(gone == std::vector<std::uint64_t>{ida, idd});
  CHECK(t.find_id(ida) == nullptr);
  CHECK(t.find(key(3, true)) == nullptr);
  CHECK(t.find_id(idl) != nullptr);
  CHECK(t.find_id(idb) != nullptr);
  // l's linger ends (silently), then b goes idle (reported).
  CHECK(t.sweep(t0 + 105s).empty());
  CHECK(t.find_id(idl) == nullptr);
  CHECK(t.sweep(t0 + 150s) == std::vector<std::uint64_t>{idb});
  CHECK(t.size() == 0);
}

TEST_CASE("nat: round robin reuses freed addresses as late as possible", "[nat]") {
  // /28 under .1: fakes .2 .. .14 (13 addresses).
  nat_table t(config("10.9.0.1", 28));
  auto fake_of = [&](int n) { return must_insert(t, key(n)).fake.to_string(); };
  CHECK(fake_of(1) == "10.9.0.2");
  CHECK(fake_of(2) == "10.9.0.3");
  CHECK(fake_of(3) == "10.9.0.4");
  t.erase(t.find(key(1))->id);  // frees .2
  CHECK(fake_of(4) == "10.9.0.5");
  t.erase(t.find(key(3))->id);  // frees .4
  for (int i = 5; i <= 13; ++i) {
    CHECK(fake_of(i) == "10.9.0." + std::to_string(i + 1));  // .6 .. .14
  }
  // Wrapped around: .2 is free, .3 still used, .4 free.
  CHECK(fake_of(14) == "10.9.0.2");
  CHECK(fake_of(15) == "10.9.0.4");
  CHECK(insert_error(t, key(16), t0) == nat_error::no_address);
  // After exhaustion the cursor still moves on from where it was.
  t.erase(t.find(key(2))->id);  // .3
  t.erase(t.find(key(13))->id);  // .14
  CHECK(fake_of(17) == "10.9.0.14");
  CHECK(fake_of(18) == "10.9.0.3");
}

TEST_CASE("nat: flow_key_hash mixes every field", "[nat]") {
  flow_key_hash h;
  std::unordered_set<std::size_t> hashes;
  int n = 0;
  for (int s = 0; s < 20; ++s) {
    for (int d = 0; d < 20; ++d) {
      for (std::uint16_t port : {80, 443, 8080}) {
        flow_key k;
        k.src = ip_address::from_v4(0x0a000000u + static_cast<std::uint32_t>(s));
        k.dst = ip_address::from_v4(0x0a000000u + static_cast<std::uint32_t>(d));
        k.sport = static_cast<std::uint16_t>(40000 + s);
        k.dport = port;
        hashes.insert(h(k));
        ++n;
      }
    }
  }
  CHECK(hashes.size() == static_cast<std::size_t>(n));
  flow_key a = key(1), b = a;
  std::swap(b.src, b.dst);
  CHECK(h(a) != h(b));
  b = a;
  std::swap(b.sport, b.dport);
  CHECK(h(a) != h(b));
  b = a;
  b.src.v6 = true;
  CHECK(h(a) != h(b));
  CHECK(h(a) == h(key(1)));
}

TEST_CASE("nat: prefixes out of range are rejected", "[nat]") {
  CHECK_THROWS_AS(nat_table(config("198.18.0.1", 31)), std::invalid_argument);
  CHECK_THROWS_AS(nat_table(config("198.18.0.1", 7)), std::invalid_argument);
  CHECK_THROWS_AS(nat_table(config("198.18.0.1", 16, "fd00::1", 127)), std::invalid_argument);
  CHECK_THROWS_AS(nat_table(config("198.18.0.1", 16, "fd00::1", 48)), std::invalid_argument);
  CHECK_NOTHROW(nat_table(config("198.18.0.1", 30, "fd00::1", 126)));
}
