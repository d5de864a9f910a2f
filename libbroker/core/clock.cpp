#include "core/clock.hpp"

#include <time.h>

#include <chrono>

namespace broker::core {

std::uint64_t SystemClock::now_ms() const noexcept {
  // The coarse clock is read from the vDSO without the timer read: several times cheaper, and
  // its few ms of granularity are far below what the core measures (expiry in seconds, keep
  // alive, pauses).
  timespec ts{};
  if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
  }
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

const SystemClock& SystemClock::instance() noexcept {
  static const SystemClock clock;
  return clock;
}

}  // namespace broker::core
