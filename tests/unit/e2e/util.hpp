// Small helpers shared by the e2e unit tests.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "e2e/e2e.hpp"

namespace nl::e2e::test {

inline std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

inline std::string str(std::span<const std::byte> b) {
  std::string out(b.size(), '\0');
  for (std::size_t i = 0; i < b.size(); ++i) out[i] = static_cast<char>(b[i]);
  return out;
}

inline std::string hex(std::span<const std::byte> b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (auto x : b) {
    out += digits[std::to_integer<unsigned>(x) >> 4];
    out += digits[std::to_integer<unsigned>(x) & 15];
  }
  return out;
}

// A key whose bytes are first, first+1, ... (test vectors).
inline key counting_key(unsigned first) {
  key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::byte>(first + i);
  return k;
}

// Seals one record into a fresh vector.
inline std::vector<std::byte> seal(sealer& s, std::span<const std::byte> plain, bool final = false) {
  std::vector<std::byte> out(plain.size() + record_overhead);
  out.resize(s.seal(plain, final, out));
  return out;
}

inline std::vector<std::byte> concat(std::initializer_list<std::span<const std::byte>> parts) {
  std::vector<std::byte> out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Opens records from `stream` until it ends, is incomplete or fails.
struct drained {
  std::vector<std::byte> plain;
  std::size_t records = 0;
  bool finished = false;
  bool error = false;
  bool incomplete_tail = false;  // bytes left that do not form a whole record
  std::string message;
};

inline drained drain(opener& o, std::span<const std::byte> stream) {
  drained d;
  std::vector<std::byte> out(max_record_plaintext);
  while (true) {
    opened_record r;
    const auto st = o.open(stream, out, r);
    if (st == open_status::error) {
      d.error = true;
      d.message = r.error;
      break;
    }
    if (st == open_status::incomplete) {
      d.incomplete_tail = !stream.empty();
      break;
    }
    d.plain.insert(d.plain.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.plain_size));
    ++d.records;
    stream = stream.subspan(r.consumed);
    if (r.final) {
      d.finished = true;
      if (!stream.empty()) {
        opened_record r2;
        if (o.open(stream, out, r2) == open_status::error) {
          d.error = true;
          d.message = r2.error;
        }
      }
      break;
    }
  }
  return d;
}

}  // namespace nl::e2e::test
