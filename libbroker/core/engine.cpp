#include "core/engine.hpp"

#include <algorithm>
#include <functional>

#include "broker/store.hpp"
#include "core/worker_core.hpp"
#include "protocol/topic.hpp"

namespace broker::core {

Engine::Engine(const Options& options, unsigned workers, Dispatcher& dispatcher, const Clock& clock,
               Store* store)
    : options_(options),
      dispatcher_(dispatcher),
      clock_(clock),
      store_(store),
      durable_acks_(store != nullptr && strongest_durability(options) == Durability::Durable),
      // Ids start from the clock so that they keep increasing across restarts; recover()
      // raises them above any stored id as well.
      next_message_id_(clock.now_ms() << 16),
      index_(workers + 1),
      retained_(options.limits.max_retained_messages, options.limits.max_retained_bytes),
      inbox_load_(std::make_unique<PaddedCounter[]>(workers)) {
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerCore>(*this, i, workers));
}

Engine::~Engine() = default;

unsigned Engine::home_worker(std::string_view client_id) const noexcept {
  return static_cast<unsigned>(std::hash<std::string_view>{}(client_id) % workers_.size());
}

void Engine::released(const Message& message) noexcept {
  if (!delete_released_.load(std::memory_order_relaxed)) return;
  WriteBatch batch;
  batch.delete_message(message.id);
  store_->submit(std::move(batch), nullptr);
}

std::optional<std::uint32_t> Engine::ttl_for(std::string_view topic) const {
  for (const auto& rule : options_.message_ttl_rules) {
    if (protocol::topic_matches(rule.filter, topic)) return rule.seconds;
  }
  return std::nullopt;
}

Durability strongest_durability(const Options& options) noexcept {
  // The enum runs from the strongest (Durable) to the weakest (Memory).
  Durability strongest = options.durability;
  for (const auto& rule : options.durability_rules) strongest = std::min(strongest, rule.mode);
  return strongest;
}

Durability Engine::durability_for(std::string_view topic) const {
  for (const auto& rule : options_.durability_rules) {
    if (protocol::topic_matches(rule.filter, topic)) return rule.mode;
  }
  return options_.durability;
}

bool Engine::persisted_topic(std::string_view topic) const {
  for (const auto& filter : options_.persisted_filters) {
    if (protocol::topic_matches(filter, topic)) return true;
  }
  return false;
}

std::uint32_t Engine::next_retained_copy_tag() noexcept {
  for (;;) {
    const std::uint32_t tag = next_retained_copy_tag_.fetch_add(1, std::memory_order_relaxed);
    if (tag >= kFirstRetainedCopyTag) return tag;  // not the two below it, after a wrap
  }
}

void Engine::raise_retained_copy_tag_floor(std::uint32_t above) noexcept {
  if (above == UINT32_MAX) return;  // wrapped: no floor holds
  std::uint32_t current = next_retained_copy_tag_.load();
  while (current <= above && !next_retained_copy_tag_.compare_exchange_weak(current, above + 1)) {
  }
}

void Engine::raise_message_id_floor(std::uint64_t above) noexcept {
  std::uint64_t current = next_message_id_.load();
  while (current <= above && !next_message_id_.compare_exchange_weak(current, above + 1)) {
  }
}

}  // namespace broker::core
