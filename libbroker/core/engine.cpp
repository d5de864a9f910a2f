#include "core/engine.hpp"

#include <chrono>
#include <functional>

#include "core/worker_core.hpp"

namespace broker::core {

std::uint64_t wall_clock_ms() noexcept {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

Engine::Engine(const Options& options, unsigned workers, Dispatcher& dispatcher)
    : options_(options),
      dispatcher_(dispatcher),
      index_(workers + 1),
      retained_(options.limits.max_retained_messages) {
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerCore>(*this, i, workers));
}

Engine::~Engine() = default;

unsigned Engine::home_worker(std::string_view client_id) const noexcept {
  return static_cast<unsigned>(std::hash<std::string_view>{}(client_id) % workers_.size());
}

}  // namespace broker::core
