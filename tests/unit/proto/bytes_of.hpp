// Shared by the proto tests: a byte vector from integer literals, e.g. bytes_of({5, 1, 0}).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <vector>

namespace proto_test {

inline std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

}  // namespace proto_test
