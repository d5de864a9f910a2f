#pragma once
// Payload: the bytes of an application message, immutable once built and shared by reference
// among every receiver, queue and write in flight (PayloadPtr).
//
// One allocation holds the reference count, the size and the bytes: a
// shared_ptr<const std::string> costs two allocations and about 50 bytes more, and both are
// paid per message a client publishes and freed, often on another worker, when the last
// receiver has it. An MQTT payload is under 256 MiB, and a node cannot hold 4 billion
// references (each holder is a delivery, a queue entry or a write), so both counters are
// 32 bits, the count unchecked, and the header is 8 bytes.
//
// Thread safety: the bytes never change; PayloadPtr (util/counted_ptr.hpp) copies and drops
// may race, and the last one frees the payload on whichever thread drops it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/counted_ptr.hpp"

namespace broker::protocol {

class Payload;
using PayloadPtr = CountedPtr<const Payload>;

class Payload {
 public:
  // A payload holding a copy of `bytes`; throws std::length_error past 4 GiB.
  static PayloadPtr copy_of(std::string_view bytes);

  Payload(const Payload&) = delete;
  Payload& operator=(const Payload&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // The bytes follow the header in the same allocation.
  const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::string_view view() const noexcept { return {data(), size_}; }
  operator std::string_view() const noexcept { return view(); }
  friend bool operator==(const Payload& a, std::string_view b) noexcept { return a.view() == b; }

 private:
  friend class CountedPtr<const Payload>;
  template <typename U, typename... Args>
  friend U* broker::new_with_trailing(std::size_t, Args&&...);
  template <typename U>
  friend void broker::delete_with_trailing(const U*) noexcept;
  explicit Payload(std::uint32_t size) noexcept : size_(size) {}
  ~Payload() = default;
  static void destroy(const Payload* payload) noexcept;
  char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }

  mutable std::atomic<std::uint32_t> references_{1};
  const std::uint32_t size_;
};

}  // namespace broker::protocol
