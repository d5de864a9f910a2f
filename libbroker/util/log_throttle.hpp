#pragma once
// LogThrottle: at most one log line per interval for a condition that can repeat per message
// (a full disk, a full inbox, refused clients), so that the log does not fill what is left.
//
// Thread safety: none; one owner thread (a worker, the store's writer).
#include <cstdint>

namespace broker::log {

class LogThrottle {
 public:
  explicit LogThrottle(std::uint64_t interval_ms) : interval_ms_(interval_ms) {}
  // True at most once per interval (and the first time): the caller logs then.
  bool allow(std::uint64_t now_ms) noexcept {
    if (logged_ && now_ms - last_ms_ < interval_ms_) return false;
    logged_ = true;
    last_ms_ = now_ms;
    return true;
  }

 private:
  const std::uint64_t interval_ms_;
  std::uint64_t last_ms_ = 0;
  bool logged_ = false;
};

}  // namespace broker::log
