#include "transport/address_quota.hpp"

#include <cstring>

namespace nl::transport {

address_quota::key address_quota::key_of(const boost::asio::ip::address& a) {
  key k{};
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    k[10] = k[11] = 0xff;  // the IPv4-mapped form, so both spellings meet
    std::memcpy(k.data() + 12, b.data(), b.size());
    return k;
  }
  auto v6 = a.to_v6();
  auto b = v6.to_bytes();
  std::memcpy(k.data(), b.data(), b.size());
  if (!v6.is_v4_mapped()) {
    std::memset(k.data() + 8, 0, 8);  // the /64
  }
  return k;
}

std::size_t address_quota::key_hash::operator()(const key& k) const noexcept {
  std::uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, k.data(), 8);
  std::memcpy(&lo, k.data() + 8, 8);
  return std::hash<std::uint64_t>{}(hi * 0x9e3779b97f4a7c15ULL ^ lo);
}

bool address_quota::try_take(const boost::asio::ip::address& a) {
  auto& n = held_[key_of(a)];
  if (cap_ != 0 && n >= cap_) {
    return false;  // n > 0 here, so the entry existed before: nothing to erase
  }
  ++n;
  ++total_;
  return true;
}

void address_quota::give_back(const boost::asio::ip::address& a) {
  auto it = held_.find(key_of(a));
  if (it == held_.end()) {
    return;
  }
  --total_;
  if (--it->second == 0) {
    held_.erase(it);
  }
}

std::size_t address_quota::held(const boost::asio::ip::address& a) const {
  auto it = held_.find(key_of(a));
  return it == held_.end() ? 0 : it->second;
}

}  // namespace nl::transport
