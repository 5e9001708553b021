// nl::bytes: an owned, movable, uninitialised byte buffer with a consumable front. Data
// on the relay path travels as `bytes` that are moved from reader to writer, never copied
// into fresh strings. Not thread-safe (like std::vector).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

#include <boost/asio/buffer.hpp>

namespace nl {

class bytes {
public:
  bytes() = default;
  explicit bytes(std::size_t capacity)
      : data_(capacity ? new std::byte[capacity] : nullptr), capacity_(capacity) {}
  static bytes copy_of(std::span<const std::byte> s) {
    bytes b(s.size());
    if (!s.empty()) {
      std::memcpy(b.data_.get(), s.data(), s.size());
    }
    b.end_ = s.size();
    return b;
  }
  // A buffer for `capacity` bytes of data with `front` spare bytes before it and `back`
  // after it (prepare() offers only the `capacity`): a framing layer (an end-to-end record
  // header and tag) can then wrap the data in place instead of copying it.
  static bytes with_room(std::size_t capacity, std::size_t front, std::size_t back) {
    bytes b(front + capacity + back);
    b.begin_ = b.end_ = front;
    b.back_ = back;
    return b;
  }
  static bytes copy_of(const void* p, std::size_t n) {
    return copy_of(std::span(static_cast<const std::byte*>(p), n));
  }

  bytes(bytes&& o) noexcept { *this = std::move(o); }
  bytes& operator=(bytes&& o) noexcept {
    data_ = std::move(o.data_);
    capacity_ = std::exchange(o.capacity_, 0);
    begin_ = std::exchange(o.begin_, 0);
    end_ = std::exchange(o.end_, 0);
    back_ = std::exchange(o.back_, 0);
    return *this;
  }

  std::byte* data() noexcept { return data_.get() + begin_; }
  const std::byte* data() const noexcept { return data_.get() + begin_; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return end_ == begin_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::span<const std::byte> span() const noexcept { return {data(), size()}; }

  // Room after the current end, for reading into.
  boost::asio::mutable_buffer prepare() noexcept {
    return {data_.get() + end_, capacity_ - back_ - end_};
  }
  // Spare room around the data, for framing in place.
  std::size_t headroom() const noexcept { return begin_; }
  std::size_t tailroom() const noexcept { return capacity_ - end_; }
  void extend_front(std::size_t n) noexcept { begin_ -= (n < begin_ ? n : begin_); }
  // Keep the first n bytes of the data (n may exceed size() by up to tailroom()).
  void resize(std::size_t n) noexcept {
    end_ = begin_ + n;
    back_ = 0;
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  // Drop n bytes from the front (after a partial write).
  void consume(std::size_t n) noexcept { begin_ += (n < size() ? n : size()); }
  void clear() noexcept { begin_ = end_ = back_ = 0; }

  boost::asio::const_buffer buffer() const noexcept { return {data(), size()}; }

  // Adds `tail` after the data: an empty buffer simply becomes `tail` (no copy); otherwise
  // the bytes go into the spare room when they fit, else both move into a new buffer of at
  // least `min_capacity` bytes. For parsers that wait for a whole unit (a record, a
  // datagram) that arrived in pieces.
  void append(bytes tail, std::size_t min_capacity = 0) {
    if (empty()) {
      *this = std::move(tail);
      return;
    }
    if (auto room = prepare(); room.size() >= tail.size()) {
      std::memcpy(room.data(), tail.data(), tail.size());
      commit(tail.size());
      return;
    }
    auto total = size() + tail.size();
    bytes joined(total > min_capacity ? total : min_capacity);
    std::memcpy(joined.data(), data(), size());
    std::memcpy(joined.data() + size(), tail.data(), tail.size());
    joined.commit(total);
    *this = std::move(joined);
  }

private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t back_ = 0;  // tail bytes prepare() does not offer
};

}  // namespace nl
