// The e2e handshake and record layer on untrusted bytes. The first input byte picks what
// the rest is (bit 4 also selects the pre-shared key); every secret is fixed, the same as
// in the unit test vectors (tests/unit/e2e/vectors.py --corpus writes valid seeds):
//   0: handshake message 1 for responder::read (agent secret 00..1f);
//   1: handshake message 2 for initiator::finish (ephemeral 20..3f, payload as the vectors);
//   2: a record stream for opener::open under the vectors' client->agent key, opened out
//      of place, in place, and record by record in pieces with begin/update/finish (the
//      three must agree), fed in uneven pieces;
//   3: differential: the rest is cut into plaintext chunks (u16 LE header: 15-bit length,
//      top bit = final), sealed, then opened again in uneven pieces: the same chunks must
//      come back (all three ways); the stream with one byte flipped must not open completely.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "e2e/e2e.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::e2e;

namespace {

key counting(unsigned first) {
  key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::byte>(first + i);
  return k;
}

std::vector<std::byte> text(const char* s) {
  std::vector<std::byte> v(std::strlen(s));
  std::memcpy(v.data(), s, v.size());
  return v;
}

struct fixture {
  static_keypair agent;
  key psk = counting(0x60);
  key e_i = counting(0x20);
  std::vector<std::byte> payload1 = text("tcp example.com:22");
  key record_key{};  // the vectors' client->agent traffic key (no psk)

  fixture() {
    agent.secret_key = counting(0x00);
    agent.public_key = public_key_of(agent.secret_key);
    std::vector<std::byte> m1;
    auto i = initiator::start_with_ephemeral(agent.public_key, std::nullopt, payload1, e_i, m1);
    auto r = responder::read(agent, std::nullopt, m1);
    NL_FUZZ_CHECK(r.has_value());
    traffic_keys rk, ik;
    const auto m2 = r->finish_with_ephemeral(text("ok"), counting(0x40), rk);
    NL_FUZZ_CHECK(i.finish(m2, ik).has_value());
    record_key = ik.send;
  }
};

const fixture& fx() {
  static const fixture f;
  return f;
}

void fuzz_message1(std::span<const std::byte> m1, const std::optional<key>& psk) {
  auto r = responder::read(fx().agent, psk, m1);
  if (!r) {
    NL_FUZZ_CHECK(!r.error().empty());
    return;
  }
  NL_FUZZ_CHECK(r->payload().size() <= max_handshake_payload);
  NL_FUZZ_CHECK(m1.size() == 1 + key_size + r->payload().size() + record_tag_size);
  traffic_keys k;
  const auto m2 = r->finish(text("ok"), k);
  NL_FUZZ_CHECK(m2.size() == key_size + 2 + record_tag_size);
  NL_FUZZ_CHECK(k.send != k.recv);
}

void fuzz_message2(std::span<const std::byte> m2, const std::optional<key>& psk) {
  std::vector<std::byte> m1;
  auto i = initiator::start_with_ephemeral(fx().agent.public_key, psk, fx().payload1, fx().e_i, m1);
  traffic_keys k;
  auto got = i.finish(m2, k);
  if (!got) {
    NL_FUZZ_CHECK(!got.error().empty());
    return;
  }
  NL_FUZZ_CHECK(got->size() <= max_handshake_payload);
  NL_FUZZ_CHECK(m2.size() == key_size + got->size() + record_tag_size);
  NL_FUZZ_CHECK(k.send != k.recv);
}

// Uneven piece sizes for feeding a stream: 1, 2, 3, 5, 8, ... wrapping.
std::size_t piece(std::size_t step) {
  static constexpr std::size_t sizes[] = {1, 2, 3, 5, 8, 13, 21, 100, 1000, 70000};
  return sizes[step % std::size(sizes)];
}

struct open_result {
  std::vector<std::vector<std::byte>> records;
  std::vector<bool> finals;
  bool error = false;
  bool finished = false;
  std::size_t consumed = 0;
};

// Feeds `stream` to an opener as a reader would: bytes arrive in pieces and accumulate in a
// buffer until a record is whole. `in_place` decrypts into the buffer itself.
open_result open_stream(const key& k, std::span<const std::byte> stream, bool in_place) {
  opener o(k);
  open_result res;
  std::vector<std::byte> buf;
  static std::vector<std::byte> out(max_record_plaintext);  // allocated once: keeps runs fast
  std::size_t fed = 0;
  for (std::size_t step = 0; !res.error; ++step) {
    const std::size_t n = std::min(piece(step), stream.size() - fed);
    buf.insert(buf.end(), stream.begin() + static_cast<std::ptrdiff_t>(fed),
               stream.begin() + static_cast<std::ptrdiff_t>(fed + n));
    fed += n;
    // Open every whole record now in the buffer.
    while (true) {
      opened_record r;
      const std::span<std::byte> dst = in_place ? std::span(buf).subspan(std::min(buf.size(), record_header_size))
                                                : std::span<std::byte>(out);
      const auto st = o.open(buf, dst, r);
      if (st == open_status::incomplete) {
        NL_FUZZ_CHECK(r.consumed == 0);
        NL_FUZZ_CHECK(o.needed() == 0 || o.needed() > buf.size());
        break;
      }
      if (st == open_status::error) {
        NL_FUZZ_CHECK(!r.error.empty());
        opened_record again;
        NL_FUZZ_CHECK(o.open(buf, out, again) == open_status::error);  // sticky
        res.error = true;
        break;
      }
      NL_FUZZ_CHECK(r.consumed == r.plain_size + record_overhead && r.consumed <= buf.size());
      NL_FUZZ_CHECK(r.plain_size <= max_record_plaintext);
      res.records.emplace_back(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(r.plain_size));
      res.finals.push_back(r.final);
      res.consumed += r.consumed;
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.consumed));
      if (r.final) {
        NL_FUZZ_CHECK(o.finished());
        res.finished = true;
        if (!buf.empty() || fed < stream.size()) {
          opened_record after;
          NL_FUZZ_CHECK(o.open(buf, out, after) == open_status::error);
          res.error = true;
        }
        return res;
      }
    }
    if (fed == stream.size()) break;
  }
  return res;
}

// The same stream, each record opened in pieces as the bytes arrive (begin / update /
// finish), the way transport/secure_stream opens records that straddle chunks. Returns
// what open_stream returns for the same input.
open_result open_stream_pieces(const key& k, std::span<const std::byte> stream) {
  opener o(k);
  open_result res;
  std::vector<std::byte> header, plain, tag;
  std::size_t done = 0;  // ciphertext bytes of the current record given to update()
  std::size_t fed = 0;
  for (std::size_t step = 0; fed < stream.size(); ++step) {
    auto in = stream.subspan(fed, std::min(piece(step), stream.size() - fed));
    fed += in.size();
    while (!in.empty()) {
      opened_record r;
      if (res.finished) {  // bytes after the final record
        header.assign(record_header_size, std::byte{0});
        NL_FUZZ_CHECK(o.begin(header, r) == open_status::error);
        res.error = true;
        return res;
      }
      if (!o.in_record()) {
        const auto n = std::min(in.size(), record_header_size - header.size());
        header.insert(header.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
        in = in.subspan(n);
        if (header.size() < record_header_size) {
          continue;
        }
        if (o.begin(header, r) != open_status::ok) {
          NL_FUZZ_CHECK(!r.error.empty() && !o.in_record());
          res.error = true;
          return res;
        }
        header.clear();
        plain.assign(r.plain_size, std::byte{0});
        tag.clear();
        done = 0;
      }
      if (done < plain.size()) {
        const auto n = std::min(in.size(), plain.size() - done);
        o.update(in.first(n), plain.data() + done);
        done += n;
        in = in.subspan(n);
        continue;
      }
      const auto n = std::min(in.size(), record_tag_size - tag.size());
      tag.insert(tag.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
      in = in.subspan(n);
      if (tag.size() < record_tag_size) {
        continue;
      }
      if (o.finish(tag, plain, r) != open_status::ok) {
        NL_FUZZ_CHECK(!r.error.empty() && !o.in_record());
        NL_FUZZ_CHECK(std::all_of(plain.begin(), plain.end(), [](std::byte b) { return b == std::byte{0}; }));
        res.error = true;
        return res;
      }
      NL_FUZZ_CHECK(r.consumed == plain.size() + record_overhead);
      res.records.push_back(plain);
      res.finals.push_back(r.final);
      res.consumed += r.consumed;
      if (r.final) {
        NL_FUZZ_CHECK(o.finished());
        res.finished = true;
      }
    }
  }
  if (res.finished && fed < stream.size()) {
    res.error = true;
  }
  return res;
}

void fuzz_records(std::span<const std::byte> stream) {
  const auto a = open_stream(fx().record_key, stream, false);
  const auto b = open_stream(fx().record_key, stream, true);
  NL_FUZZ_CHECK(a.records == b.records && a.finals == b.finals && a.error == b.error && a.finished == b.finished);
  const auto c = open_stream_pieces(fx().record_key, stream);
  NL_FUZZ_CHECK(a.records == c.records && a.finals == c.finals && a.error == c.error && a.finished == c.finished);
}

void fuzz_differential(std::span<const std::byte> data) {
  const key k = counting(0x11);
  sealer s(k);
  std::vector<std::vector<std::byte>> chunks;
  std::vector<bool> finals;
  std::vector<std::byte> stream;
  std::size_t pos = 0;
  while (pos + 2 <= data.size() && !s.finished()) {
    const unsigned h = std::to_integer<unsigned>(data[pos]) | (std::to_integer<unsigned>(data[pos + 1]) << 8);
    pos += 2;
    const std::size_t len = std::min<std::size_t>(h & 0x7fff, data.size() - pos);
    const bool final = (h & 0x8000) != 0;
    chunks.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(pos),
                        data.begin() + static_cast<std::ptrdiff_t>(pos + len));
    finals.push_back(final);
    pos += len;
    const std::size_t at = stream.size();
    stream.resize(at + len + record_overhead);
    NL_FUZZ_CHECK(s.seal(chunks.back(), final, std::span(stream).subspan(at)) == len + record_overhead);
  }
  for (int how = 0; how < 3; ++how) {
    const auto r = how < 2 ? open_stream(k, stream, how == 1) : open_stream_pieces(k, stream);
    NL_FUZZ_CHECK(!r.error);
    NL_FUZZ_CHECK(r.records == chunks && r.finals == finals);
    NL_FUZZ_CHECK(r.finished == s.finished());
    NL_FUZZ_CHECK(r.consumed == stream.size());
  }
  if (!stream.empty()) {
    // One flipped bit anywhere: the stream must not open completely any more.
    auto bad = stream;
    const std::size_t at = (data.size() * 2654435761u) % bad.size();
    bad[at] ^= std::byte{static_cast<unsigned char>(1u << (data.size() % 8))};
    const auto r = open_stream(k, bad, false);
    NL_FUZZ_CHECK(r.error || r.consumed < bad.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const auto mode = data[0] & 3;
  const std::optional<key> psk = (data[0] & 0x10) ? std::optional<key>(fx().psk) : std::nullopt;
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (mode) {
    case 0: fuzz_message1(rest, psk); break;
    case 1: fuzz_message2(rest, psk); break;
    case 2: fuzz_records(rest); break;
    default: fuzz_differential(rest); break;
  }
  return 0;
}
