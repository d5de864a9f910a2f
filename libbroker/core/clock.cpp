#include "core/clock.hpp"

#include <time.h>

namespace broker::core {

namespace {

std::uint64_t read_ms(clockid_t clock) noexcept {
  timespec ts{};
  (void)clock_gettime(clock, &ts);  // fails only for an unknown clock id
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace

SystemClock::SystemClock() noexcept
    : wall_at_start_ms_(read_ms(CLOCK_REALTIME)), elapsed_at_start_ms_(read_ms(CLOCK_BOOTTIME)) {}

std::uint64_t SystemClock::now_ms() const noexcept {
  // CLOCK_BOOTTIME has no coarse variant; read from the vDSO it costs about 50 ns here, once per
  // socket read rather than per packet.
  return wall_at_start_ms_ + (read_ms(CLOCK_BOOTTIME) - elapsed_at_start_ms_);
}

const SystemClock& SystemClock::instance() noexcept {
  static const SystemClock clock;
  return clock;
}

}  // namespace broker::core
