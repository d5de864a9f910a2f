#include "core/engine.hpp"

#include <functional>

#include "core/worker_core.hpp"

namespace broker::core {

Engine::Engine(const Options& options, unsigned workers, Dispatcher& dispatcher, const Clock& clock)
    : options_(options),
      dispatcher_(dispatcher),
      clock_(clock),
      index_(workers + 1),
      retained_(options.limits.max_retained_messages),
      inbox_load_(std::make_unique<PaddedCounter[]>(workers)) {
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerCore>(*this, i, workers));
}

Engine::~Engine() = default;

unsigned Engine::home_worker(std::string_view client_id) const noexcept {
  return static_cast<unsigned>(std::hash<std::string_view>{}(client_id) % workers_.size());
}

}  // namespace broker::core
