#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "e2e/e2e.hpp"
#include "tests/unit/e2e/util.hpp"

using namespace nl::e2e;
using nl::e2e::test::bytes;
using nl::e2e::test::concat;
using nl::e2e::test::drain;
using nl::e2e::test::seal;
using nl::e2e::test::str;

namespace {

const key k = test::counting_key(0x11);

std::vector<std::byte> pattern(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 7 + 3);
  return v;
}

}  // namespace

TEST_CASE("records round trip at every interesting size", "[e2e][record]") {
  sealer s(k);
  opener o(k);
  std::vector<std::byte> out(max_record_plaintext);
  for (std::size_t n : {0u, 1u, 2u, 15u, 16u, 17u, 1000u, 16384u, 65535u, 65536u}) {
    const auto plain = pattern(n);
    const auto rec = seal(s, plain);
    CHECK(rec.size() == n + record_overhead);
    CHECK(std::to_integer<int>(rec[0]) == 0);
    CHECK(((std::to_integer<std::size_t>(rec[1]) << 16) | (std::to_integer<std::size_t>(rec[2]) << 8) |
           std::to_integer<std::size_t>(rec[3])) == n);
    opened_record r;
    REQUIRE(o.open(rec, out, r) == open_status::ok);
    CHECK(r.consumed == rec.size());
    CHECK(r.plain_size == n);
    CHECK_FALSE(r.final);
    CHECK(std::equal(plain.begin(), plain.end(), out.begin()));
  }
  const auto last = seal(s, bytes("bye"), true);
  CHECK(s.finished());
  CHECK(std::to_integer<int>(last[0]) == 1);
  opened_record r;
  REQUIRE(o.open(last, out, r) == open_status::ok);
  CHECK(r.final);
  CHECK(o.finished());
  CHECK(str(std::span(out).first(r.plain_size)) == "bye");
}

TEST_CASE("the sealer refuses misuse", "[e2e][record]") {
  sealer s(k);
  std::vector<std::byte> out(max_record_plaintext + record_overhead + 1);
  CHECK_THROWS_AS(s.seal(pattern(max_record_plaintext + 1), false, out), std::invalid_argument);
  CHECK_THROWS_AS(s.seal(pattern(10), false, std::span(out).first(10 + record_overhead - 1)), std::invalid_argument);
  CHECK(s.seal(pattern(10), false, std::span(out).first(10 + record_overhead)) == 10 + record_overhead);
  CHECK_FALSE(s.finished());
  CHECK(s.seal({}, true, out) == record_overhead);
  CHECK(s.finished());
  CHECK_THROWS_AS(s.seal({}, false, out), std::logic_error);
  CHECK_THROWS_AS(s.seal({}, true, out), std::logic_error);
}

TEST_CASE("the same plaintext never gives the same record (counter nonces)", "[e2e][record]") {
  sealer s(k);
  const auto a = seal(s, bytes("same"));
  const auto b = seal(s, bytes("same"));
  CHECK(a != b);
}

TEST_CASE("every modified byte of a record is detected", "[e2e][record]") {
  sealer s(k);
  const auto r0 = seal(s, pattern(100));
  const auto r1 = seal(s, pattern(30), true);
  const auto stream = concat({r0, r1});
  for (std::size_t i = 0; i < stream.size(); ++i) {
    for (std::byte flip : {std::byte{0x01}, std::byte{0x40}, std::byte{0x80}}) {
      auto bad = stream;
      bad[i] ^= flip;
      opener o(k);
      const auto d = drain(o, bad);
      INFO("byte " << i << " flip " << std::to_integer<int>(flip));
      // Either an error, or a length that runs past the end: truncation, never success.
      CHECK_FALSE(d.finished);
      CHECK((d.error || d.incomplete_tail));
      if (i < r0.size()) {
        CHECK(d.records == 0);
      } else {
        CHECK(d.records <= 1);
      }
    }
  }
}

TEST_CASE("replayed, reordered and dropped records are detected", "[e2e][record]") {
  sealer s(k);
  const auto r0 = seal(s, bytes("zero"));
  const auto r1 = seal(s, bytes("one"));
  const auto r2 = seal(s, bytes("two"), true);
  {
    opener o(k);
    const auto d = drain(o, concat({r0, r1, r2}));
    CHECK(d.finished);
    CHECK_FALSE(d.error);
    CHECK(str(d.plain) == "zeroonetwo");
  }
  SECTION("replay") {
    opener o(k);
    const auto d = drain(o, concat({r0, r0, r1, r2}));
    CHECK(d.error);
    CHECK(d.records == 1);
    CHECK_THAT(d.message, Catch::Contains("record 1 failed authentication"));
  }
  SECTION("reorder") {
    opener o(k);
    const auto d = drain(o, concat({r1, r0, r2}));
    CHECK(d.error);
    CHECK(d.records == 0);
  }
  SECTION("drop") {
    opener o(k);
    const auto d = drain(o, concat({r0, r2}));
    CHECK(d.error);
    CHECK(d.records == 1);
    CHECK(str(d.plain) == "zero");
  }
  SECTION("wrong key (the other direction)") {
    opener o(test::counting_key(0x12));
    const auto d = drain(o, concat({r0, r1, r2}));
    CHECK(d.error);
    CHECK(d.records == 0);
  }
}

TEST_CASE("truncation is visible: no final record, or a record cut short", "[e2e][record]") {
  sealer s(k);
  const auto r0 = seal(s, bytes("zero"));
  const auto r1 = seal(s, bytes("one"), true);
  {
    opener o(k);
    const auto d = drain(o, r0);
    CHECK_FALSE(d.error);
    CHECK_FALSE(d.incomplete_tail);
    CHECK_FALSE(d.finished);  // end of input without the final record = truncation
    CHECK_FALSE(o.finished());
  }
  for (std::size_t cut = 1; cut < r1.size(); ++cut) {
    opener o(k);
    const auto both = concat({r0, r1});
    const auto d = drain(o, std::span(both).first(r0.size() + cut));
    CHECK_FALSE(d.finished);
    CHECK(d.incomplete_tail);
    CHECK(d.records == 1);
  }
}

TEST_CASE("nothing may follow the final record", "[e2e][record]") {
  sealer s(k);
  const auto r0 = seal(s, bytes("end"), true);
  opener o(k);
  std::vector<std::byte> out(100);
  opened_record r;
  REQUIRE(o.open(concat({r0, bytes("x")}), out, r) == open_status::ok);
  CHECK(r.final);
  CHECK(r.consumed == r0.size());
  CHECK(o.open(bytes("x"), out, r) == open_status::error);
  CHECK(r.error == "e2e data after the final record");
  CHECK(o.open({}, out, r) == open_status::error);
}

TEST_CASE("a record fed byte by byte is incomplete until whole", "[e2e][record]") {
  sealer s(k);
  const auto rec = seal(s, pattern(300));
  opener o(k);
  std::vector<std::byte> out(300);
  CHECK(o.needed() == 0);
  for (std::size_t n = 0; n < rec.size(); ++n) {
    opened_record r;
    REQUIRE(o.open(std::span(rec).first(n), out, r) == open_status::incomplete);
    CHECK(r.consumed == 0);
    CHECK(o.needed() == (n < record_header_size ? 0 : rec.size()));
  }
  opened_record r;
  REQUIRE(o.open(rec, out, r) == open_status::ok);
  CHECK(r.consumed == rec.size());
  CHECK(out == pattern(300));
  CHECK(o.needed() == 0);
}

TEST_CASE("records decrypt in place", "[e2e][record]") {
  sealer s(k);
  opener o(k);
  for (std::size_t n : {0u, 1u, 5000u, 65536u}) {
    auto buf = seal(s, pattern(n));
    opened_record r;
    REQUIRE(o.open(buf, std::span(buf).subspan(record_header_size), r) == open_status::ok);
    CHECK(r.plain_size == n);
    CHECK(std::equal(buf.begin() + record_header_size, buf.begin() + record_header_size + static_cast<long>(n),
                     pattern(n).begin()));
  }
}

TEST_CASE("errors are sticky", "[e2e][record]") {
  sealer s(k);
  auto r0 = seal(s, bytes("zero"));
  const auto r1 = seal(s, bytes("one"));
  opener o(k);
  std::vector<std::byte> out(100);
  opened_record r;
  auto bad = r0;
  bad.back() ^= std::byte{1};
  REQUIRE(o.open(bad, out, r) == open_status::error);
  CHECK_THAT(r.error, Catch::Contains("record 0 failed authentication"));
  CHECK(o.open(r0, out, r) == open_status::error);
  CHECK(o.open(r1, out, r) == open_status::error);
  CHECK(o.open({}, out, r) == open_status::error);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("bad headers are refused before any decryption", "[e2e][record]") {
  std::vector<std::byte> out(16);
  opened_record r;
  {
    opener o(k);
    const std::vector<std::byte> h{std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}};
    CHECK(o.open(h, out, r) == open_status::error);
    CHECK_THAT(r.error, Catch::Contains("unknown kind 2"));
  }
  {
    opener o(k);
    const std::vector<std::byte> h{std::byte{0}, std::byte{1}, std::byte{0}, std::byte{1}};  // 65537
    CHECK(o.open(h, out, r) == open_status::error);
    CHECK_THAT(r.error, Catch::Contains("65537 bytes"));
  }
  {
    opener o(k);
    const std::vector<std::byte> h{std::byte{0}, std::byte{1}, std::byte{0}, std::byte{0}};  // 65536: fine
    CHECK(o.open(h, out, r) == open_status::incomplete);
    CHECK(o.needed() == 65536 + record_overhead);
  }
}

TEST_CASE("the opener refuses an output buffer that is too small", "[e2e][record]") {
  sealer s(k);
  const auto rec = seal(s, pattern(10));
  opener o(k);
  std::vector<std::byte> out(9);
  opened_record r;
  CHECK_THROWS_AS(o.open(rec, out, r), std::invalid_argument);
  out.resize(10);
  CHECK(o.open(rec, out, r) == open_status::ok);  // not an error of the stream
}

TEST_CASE("moved sealers and openers keep their position", "[e2e][record]") {
  sealer s0(k);
  opener o0(k);
  const auto r0 = seal(s0, bytes("a"));
  sealer s = std::move(s0);
  const auto r1 = seal(s, bytes("b"), true);
  std::vector<std::byte> out(10);
  opened_record r;
  REQUIRE(o0.open(r0, out, r) == open_status::ok);
  opener o = std::move(o0);
  REQUIRE(o.open(r1, out, r) == open_status::ok);
  CHECK(r.final);
  CHECK_THROWS_AS(s0.seal({}, false, out), std::logic_error);
  CHECK(o0.open(r1, out, r) == open_status::error);
}

namespace {

// Opens one whole record with begin/update/finish, the ciphertext given in pieces of the
// sizes `cuts` cycles through.
open_status open_in_pieces(opener& o, std::span<const std::byte> rec, std::vector<std::byte>& out,
                           std::initializer_list<std::size_t> cuts, opened_record& r) {
  if (auto st = o.begin(rec.first(record_header_size), r); st != open_status::ok) {
    return st;
  }
  const std::size_t len = r.plain_size;
  out.assign(len, std::byte{0x77});
  auto ct = rec.subspan(record_header_size, len);
  std::size_t done = 0;
  auto cut = cuts.begin();
  while (done < len) {
    const std::size_t n = std::min(*cut, len - done);
    o.update(ct.subspan(done, n), out.data() + done);
    done += n;
    if (++cut == cuts.end()) cut = cuts.begin();
  }
  return o.finish(rec.subspan(record_header_size + len, record_tag_size), out, r);
}

}  // namespace

TEST_CASE("records opened in pieces give what open() gives", "[e2e][record]") {
  sealer s(k);
  opener whole(k), pieces(k);
  std::vector<std::byte> out1(max_record_plaintext), out2;
  for (std::size_t n : {0u, 1u, 63u, 64u, 65u, 1000u, 16384u, 65536u}) {
    const auto plain = pattern(n);
    const auto rec = seal(s, plain, n == 65536u);
    opened_record r1, r2;
    REQUIRE(whole.open(rec, out1, r1) == open_status::ok);
    REQUIRE(open_in_pieces(pieces, rec, out2, {1, 7, 64, 1500, 3}, r2) == open_status::ok);
    CHECK(r2.consumed == r1.consumed);
    CHECK(r2.plain_size == n);
    CHECK(r2.final == r1.final);
    CHECK(std::equal(plain.begin(), plain.end(), out2.begin(), out2.end()));
    CHECK_FALSE(pieces.in_record());
  }
  CHECK(pieces.finished());
  opened_record r;
  std::array<std::byte, record_header_size> h{};
  CHECK(pieces.begin(h, r) == open_status::error);  // nothing after the final record
}

TEST_CASE("a record opened in pieces is checked like a whole one", "[e2e][record]") {
  const auto plain = pattern(5000);
  for (std::size_t at : {std::size_t{0}, std::size_t{2}, std::size_t{4}, std::size_t{2500}, std::size_t{5003},
                         std::size_t{5010}, std::size_t{5019}}) {
    CAPTURE(at);
    sealer s(k);
    opener o(k);
    auto rec = seal(s, plain);
    rec[at] ^= std::byte{0x01};
    opened_record r;
    std::vector<std::byte> out;
    const auto st = open_in_pieces(o, rec, out, {100, 1}, r);
    CHECK(st == open_status::error);
    CHECK_FALSE(r.error.empty());
    // the unauthenticated plaintext is wiped
    CHECK(std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0}; }));
    CHECK(o.begin(std::span(rec).first(record_header_size), r) == open_status::error);  // sticky
  }
}

TEST_CASE("opening in pieces refuses calls out of order", "[e2e][record]") {
  sealer s(k);
  opener o(k);
  const auto rec = seal(s, pattern(100));
  std::vector<std::byte> out(100);
  opened_record r;
  CHECK_THROWS_AS(o.update(std::span(rec).subspan(4, 10), out.data()), std::logic_error);
  REQUIRE(o.begin(std::span(rec).first(4), r) == open_status::ok);
  CHECK(o.in_record());
  CHECK_THROWS_AS(o.begin(std::span(rec).first(4), r), std::logic_error);
  CHECK_THROWS_AS(o.open(rec, out, r), std::logic_error);
  CHECK_THROWS_AS(o.finish(std::span(rec).subspan(104, 16), out, r), std::logic_error);  // no ciphertext yet
  o.update(std::span(rec).subspan(4, 100), out.data());
  CHECK_THROWS_AS(o.update(std::span(rec).subspan(4, 1), out.data()), std::logic_error);  // past the end
  REQUIRE(o.finish(std::span(rec).subspan(104, 16), out, r) == open_status::ok);
  CHECK(std::equal(out.begin(), out.end(), pattern(100).begin()));
}
