#pragma once
// Logging through fmt with levels. One process-wide sink (stderr by default, or a callback an
// embedder installs); the level check is one relaxed atomic load, so disabled levels cost
// nothing but that.
//
// Thread safety: all functions are safe from any thread; a line is written whole.
#include <atomic>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "broker/options.hpp"

namespace broker::log {

void set_level(LogLevel level) noexcept;
LogLevel level() noexcept;
inline bool enabled(LogLevel l) noexcept;

// Replaces the sink; nullptr restores stderr. The view is valid during the call only.
using Sink = std::function<void(LogLevel, std::string_view line)>;
void set_sink(Sink sink);

void write(LogLevel level, std::string_view message);

namespace detail {
extern std::atomic<int> g_level;
}
inline bool enabled(LogLevel l) noexcept {
  return static_cast<int>(l) >= detail::g_level.load(std::memory_order_relaxed);
}

template <typename... Args>
void at(LogLevel l, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(l)) write(l, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... a) { at(LogLevel::Trace, f, std::forward<Args>(a)...); }
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) { at(LogLevel::Debug, f, std::forward<Args>(a)...); }
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) { at(LogLevel::Info, f, std::forward<Args>(a)...); }
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) { at(LogLevel::Warn, f, std::forward<Args>(a)...); }
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) { at(LogLevel::Error, f, std::forward<Args>(a)...); }

}  // namespace broker::log
