#pragma once
// Engine: the state every worker shares: options, the topic index, retained messages, the
// workers' cores and the way to reach them. Built once per Broker.
//
// Thread safety: the members are either immutable after construction (options, workers) or
// thread-safe themselves (index, retained, atomics).
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "broker/options.hpp"
#include "broker/store.hpp"
#include "core/clock.hpp"
#include "broker/status.hpp"
#include "core/dispatcher.hpp"
#include "core/message.hpp"
#include "core/retained_store.hpp"
#include "core/topic_index.hpp"

namespace broker {
class Store;
}

namespace broker::core {

class WorkerCore;

// The most any message is promised: Options::durability or a durability rule above it. The
// store exists, and commits are fsynced, according to it: a "durable" rule under "memory" or
// "async" overall still gets what it asks for.
Durability strongest_durability(const Options& options) noexcept;

class Engine final : private MessageReleaser {
 public:
  // workers: how many WorkerCores to create; dispatcher: how they reach each other; clock:
  // the time source (both must outlive the Engine). One extra index reader slot serves
  // threads that are not workers.
  // store (may be null: nothing is persisted) must outlive the Engine too.
  Engine(const Options& options, unsigned workers, Dispatcher& dispatcher,
         const Clock& clock = SystemClock::instance(), Store* store = nullptr);
  ~Engine();

  const Options& options() const noexcept { return options_; }
  const Limits& limits() const noexcept { return options_.limits; }
  TopicIndex& index() noexcept { return index_; }
  RetainedStore& retained() noexcept { return retained_; }
  Dispatcher& dispatcher() noexcept { return dispatcher_; }
  std::uint64_t now_ms() const noexcept { return clock_.now_ms(); }
  unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
  WorkerCore& worker(unsigned i) noexcept { return *workers_[i]; }

  // The worker a client id's session lives on: a hash, so a reconnect finds its session
  // without a directory.
  unsigned home_worker(std::string_view client_id) const noexcept;

  // Deliveries posted to worker `w` and not yet taken by it (bounds its inbox).
  std::atomic<std::uint64_t>& inbox_load(unsigned w) noexcept { return inbox_load_[w].value; }
  // Workers with publishers held until worker `w`'s inbox drains (core/flow_control.hpp).
  std::atomic<std::uint64_t>& inbox_waiters(unsigned w) noexcept { return inbox_load_[w].waiters; }

  // The store, or null when nothing is persisted.
  Store* store() const noexcept { return store_; }
  // Whether publishers' acknowledgements wait for the store's commit.
  bool durable_acks() const noexcept { return durable_acks_; }
  // Whether recovery left stored retained messages unserved (past a limit lowered since).
  // Set before the workers start; read by them.
  bool unserved_retained() const noexcept { return unserved_retained_; }
  void note_unserved_retained() noexcept { unserved_retained_ = true; }
  // A new message whose record, once persisted, is deleted with its last reference.
  MessageRef new_message(std::string_view topic, std::string_view origin_client_id) {
    return Message::create(topic, origin_client_id, message_releaser());
  }
  // What new messages report their last reference to: this engine, when there is a store.
  MessageReleaser* message_releaser() noexcept { return store_ ? this : nullptr; }
  // Broker-wide unique, increasing message id (also unique across restarts).
  std::uint64_t next_message_id() noexcept { return next_message_id_.fetch_add(1, std::memory_order_relaxed); }
  // The id the next message will get: a message with this id or a later one was made after
  // the call, so its routing sees a subscription made before it (the index's lock orders them).
  std::uint64_t first_unassigned_message_id() const noexcept {
    return next_message_id_.load(std::memory_order_relaxed);
  }
  void raise_message_id_floor(std::uint64_t above) noexcept;
  // A tag for the record of a copy queued from the retained messages at a SUBSCRIBE, unlike
  // the tags of the copies that may be stored beside it (see StoredDelivery::shared_tag).
  // Increasing, wrapping around past kFirstRetainedCopyTag; recovery raises it past the tags
  // of the records it read.
  std::uint32_t next_retained_copy_tag() noexcept;
  void raise_retained_copy_tag_floor(std::uint32_t above) noexcept;
  // Shutdown keeps persisted messages: their in-memory release must not delete records.
  void keep_persisted_messages() noexcept { delete_released_.store(false); }

  // Seconds a message on `topic` lives when its publisher set no expiry (TTL rules).
  std::optional<std::uint32_t> ttl_for(std::string_view topic) const;
  // How messages on `topic` are stored and acknowledged (durability rules, then the default).
  Durability durability_for(std::string_view topic) const;
  // Whether messages on `topic` go to the message log (persisted filters).
  bool persisted_topic(std::string_view topic) const;

  // Reads the store back into the workers' sessions, the index and retained messages.
  // REQUIRES: before any worker runs. Errors: the store's.
  Status recover();

 private:
  void released(const Message& message) noexcept override;

 public:

  // Connections open on all workers (for max_connections).
  std::atomic<std::uint64_t>& open_connections() noexcept { return open_connections_; }

  // Counts the times a subscriber became Congested, so that a publisher's worker can tell
  // whether the publisher reached an Open receiver since (WorkerCore::route). Wraps around;
  // compare with epoch_before.
  std::uint32_t congestion_epoch() const noexcept { return congestion_epoch_.load(std::memory_order_acquire); }
  std::uint32_t next_congestion_epoch() noexcept {
    return congestion_epoch_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }

 private:
  Options options_;
  Dispatcher& dispatcher_;
  const Clock& clock_;
  Store* const store_;
  const bool durable_acks_;  // a store, and some message promised Durable
  bool unserved_retained_ = false;
  std::atomic<std::uint64_t> next_message_id_;
  std::atomic<std::uint32_t> next_retained_copy_tag_{kFirstRetainedCopyTag};
  std::atomic<bool> delete_released_{true};
  TopicIndex index_;
  RetainedStore retained_;
  std::vector<std::unique_ptr<WorkerCore>> workers_;
  std::atomic<std::uint64_t> open_connections_{0};
  alignas(64) std::atomic<std::uint32_t> congestion_epoch_{0};  // read on every route
  struct alignas(64) PaddedCounter {
    std::atomic<std::uint64_t> value{0};
    std::atomic<std::uint64_t> waiters{0};
  };
  std::unique_ptr<PaddedCounter[]> inbox_load_;
};

}  // namespace broker::core
