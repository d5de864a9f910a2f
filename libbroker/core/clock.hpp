#pragma once
// Clock: where the core reads the time, in ms since the Unix epoch, because message and session
// expiry must mean the same after a restart. Tests inject a FakeClock.
//
// Thread safety: now_ms() is called from every worker thread concurrently.
#include <cstdint>

namespace broker::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::uint64_t now_ms() const noexcept = 0;
};

// The real clock: the wall clock read once, at the first use, advanced by the time elapsed since
// (CLOCK_BOOTTIME, which also counts a suspended host). A step of the wall clock while the
// broker runs (an NTP correction, an operator's `date`) then changes no expiry: stepped 2 hours
// forward, the wall clock would end every 1-hour session and its queued messages at once; stepped
// back, a message would go out with a Message Expiry Interval larger than its publisher set
// [MQTT-3.3.2-6]. Across a restart the wall clock is the only reference there is; recovery
// caps what it reads at the intervals the records were given.
class SystemClock final : public Clock {
 public:
  std::uint64_t now_ms() const noexcept override;
  static const SystemClock& instance() noexcept;

 private:
  SystemClock() noexcept;
  std::uint64_t wall_at_start_ms_;
  std::uint64_t elapsed_at_start_ms_;
};

}  // namespace broker::core
