#pragma once
// Counters one worker keeps; ops and Broker::stats() read and sum them.
//
// Thread safety: relaxed atomics, each written by one worker thread and read, approximately,
// by any thread.
#include <atomic>
#include <cstdint>

namespace broker::core {

struct Counters {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> messages_dropped{0};
  std::atomic<std::uint64_t> messages_expired{0};
  std::atomic<std::uint64_t> protocol_errors{0};

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  static void sub(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.fetch_sub(n, std::memory_order_relaxed);
  }
};

}  // namespace broker::core
