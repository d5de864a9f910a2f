#include "util/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace broker::log {
namespace detail {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
}

namespace {
std::mutex g_sink_mutex;
Sink g_sink;  // guarded by g_sink_mutex; empty = stderr

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Trace: return "trace";
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "?";
}
}  // namespace

void set_level(LogLevel level) noexcept { detail::g_level.store(static_cast<int>(level)); }
LogLevel level() noexcept { return static_cast<LogLevel>(detail::g_level.load()); }

void set_sink(Sink sink) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(sink);
}

void write(LogLevel level, std::string_view message) {
  std::lock_guard lock(g_sink_mutex);
  if (g_sink) {
    g_sink(level, message);
    return;
  }
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %.*s\n", tm.tm_year + 1900,
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms),
               level_name(level), static_cast<int>(message.size()), message.data());
}

}  // namespace broker::log
