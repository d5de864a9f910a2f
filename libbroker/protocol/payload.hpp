#pragma once
// Payload: the bytes of an application message, immutable once built and shared by reference
// among every receiver, queue and write in flight (PayloadPtr).
//
// One allocation holds the reference count, the size and the bytes: a
// shared_ptr<const std::string> costs two allocations and about 50 bytes more, and both are
// paid per message a client publishes and freed, often on another worker, when the last
// receiver has it. An MQTT payload is under 256 MiB, and a node cannot hold 4 billion
// references, so both counters are 32 bits and the header is 8 bytes.
//
// Thread safety: the bytes never change; PayloadPtr copies and drops may race like
// shared_ptr's, and the last one frees the payload on whichever thread drops it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace broker::protocol {

class PayloadPtr;

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
  friend class PayloadPtr;
  explicit Payload(std::uint32_t size) noexcept : size_(size) {}
  ~Payload() = default;
  static void destroy(const Payload* payload) noexcept;
  char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }

  mutable std::atomic<std::uint32_t> references_{1};
  const std::uint32_t size_;
};

// A counted reference to a Payload, or null (as shared_ptr, without its second word).
class PayloadPtr {
 public:
  PayloadPtr() noexcept = default;
  PayloadPtr(std::nullptr_t) noexcept {}  // NOLINT: null converts, as for shared_ptr
  PayloadPtr(const PayloadPtr& other) noexcept : payload_(other.payload_) {
    // A new reference needs no ordering: the one it was copied from keeps the bytes alive.
    if (payload_) payload_->references_.fetch_add(1, std::memory_order_relaxed);
  }
  PayloadPtr(PayloadPtr&& other) noexcept : payload_(std::exchange(other.payload_, nullptr)) {}
  PayloadPtr& operator=(PayloadPtr other) noexcept {
    std::swap(payload_, other.payload_);
    return *this;
  }
  ~PayloadPtr() {
    // The last drop must see every other thread's use of the bytes before freeing them.
    if (payload_ && payload_->references_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      Payload::destroy(payload_);
  }

  const Payload* get() const noexcept { return payload_; }
  const Payload& operator*() const noexcept { return *payload_; }
  const Payload* operator->() const noexcept { return payload_; }
  explicit operator bool() const noexcept { return payload_ != nullptr; }
  friend bool operator==(const PayloadPtr& p, std::nullptr_t) noexcept { return p.payload_ == nullptr; }
  // How many references there are (for tests; racy while other threads hold it).
  std::uint32_t use_count() const noexcept {
    return payload_ ? payload_->references_.load(std::memory_order_relaxed) : 0;
  }

 private:
  friend class Payload;
  explicit PayloadPtr(const Payload* payload) noexcept : payload_(payload) {}
  const Payload* payload_ = nullptr;
};

}  // namespace broker::protocol
