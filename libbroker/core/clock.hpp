#pragma once
// Clock: where the core reads the time. Wall clock (ms since the Unix epoch), because message
// and session expiry must mean the same after a restart. Tests inject a FakeClock.
//
// Thread safety: now_ms() is called from every worker thread concurrently.
#include <cstdint>

namespace broker::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::uint64_t now_ms() const noexcept = 0;
};

// The real clock: CLOCK_REALTIME_COARSE (a few ms of granularity).
class SystemClock final : public Clock {
 public:
  std::uint64_t now_ms() const noexcept override;
  static const SystemClock& instance() noexcept;
};

}  // namespace broker::core
