// A FIFO of byte chunks for stream buffers (the mux's received chunks, QUIC's received
// and unacknowledged ones) that allocates nothing while empty. An idle std::deque holds a
// 512-byte node and its map: ~600 B per idle stream state, in every process a stream
// crosses. Popped slots are reclaimed when the queue empties, or compacted once they
// are more than half of it, so a queue that never drains does not grow.
// Thread-safety: none (one executor).
#pragma once

#include <utility>

#include <cstddef>
#include <vector>

#include "common/bytes.hpp"

namespace nl::transport {

class chunk_queue {
public:
  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  // Bytes held, summed over the chunks.
  std::size_t byte_count() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = head_; i < items_.size(); ++i) {
      n += items_[i].size();
    }
    return n;
  }
  void push_back(bytes b) { items_.push_back(std::move(b)); }
  template <class... Args>
  bytes& emplace_back(Args&&... args) {
    return items_.emplace_back(std::forward<Args>(args)...);
  }
  bytes& front() noexcept { return items_[head_]; }
  bytes& back() noexcept { return items_.back(); }
  // Removes the first chunk and hands it over.
  bytes pop_front() {
    bytes b = std::move(items_[head_++]);
    if (head_ == items_.size()) {
      items_.clear();  // keeps the (small) capacity for the next burst
      head_ = 0;
    } else if (head_ >= 16 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    return b;
  }
  void clear() noexcept {
    std::vector<bytes>().swap(items_);
    head_ = 0;
  }
  auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() noexcept { return items_.end(); }

private:
  std::vector<bytes> items_;
  std::size_t head_ = 0;
};

}  // namespace nl::transport
