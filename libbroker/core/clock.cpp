#include "core/clock.hpp"

#include <chrono>

namespace broker::core {

std::uint64_t SystemClock::now_ms() const noexcept {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

const SystemClock& SystemClock::instance() noexcept {
  static const SystemClock clock;
  return clock;
}

}  // namespace broker::core
