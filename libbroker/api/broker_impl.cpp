// The Broker behind broker.hpp: a WorkerPool (threads, sockets) driving an Engine (MQTT).
#include <arpa/inet.h>
#include <semaphore.h>

#include <cerrno>
#include <ctime>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/store.hpp"
#include "api/message_check.hpp"
#include "core/clock.hpp"
#include "core/engine.hpp"
#include "core/records.hpp"
#include "core/worker_core.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"
#include "protocol/wire.hpp"
#include "storage/lmdb/lmdb_store.hpp"
#include "transport/worker_pool.hpp"
#include "util/log.hpp"

namespace broker {

namespace {

// Ticks drive keep alive, will delay and expiry; a keep alive of 1 s must be enforced at
// 1.5 s, so ticks come several times a second.
constexpr std::uint32_t kTickIntervalMs = 250;
constexpr std::chrono::seconds kStopStepTimeout{3};
// How often the message log is trimmed to its retention (age and bytes).
constexpr long kLogTrimIntervalSeconds = 60;

bool numeric_address(const std::string& host) {
  in6_addr any{};
  return inet_pton(AF_INET, host.c_str(), &any) == 1 || inet_pton(AF_INET6, host.c_str(), &any) == 1;
}

// A topic filter an option may name: valid and not shared.
bool plain_filter(const std::string& filter) {
  return protocol::valid_topic_filter(filter) && !protocol::is_shared_filter(filter);
}

Status check_options(const Options& options) {
  const Limits& l = options.limits;
  if (options.listeners.empty()) return Status::invalid_argument("listeners: at least one is needed");
  if (l.max_packet_size < 64 || l.max_packet_size > 268435460u)
    return Status::invalid_argument("limits.max_packet_size must be from 64 to 268435460");
  if (l.max_connect_packet_size < 64 || l.max_connect_packet_size > 268435460u)
    return Status::invalid_argument("limits.max_connect_packet_size must be from 64 to 268435460");
  if (l.receive_maximum == 0) return Status::invalid_argument("limits.receive_maximum must be from 1 to 65535");
  if (l.max_inflight == 0) return Status::invalid_argument("limits.max_inflight must be from 1 to 65535");
  if (l.max_qos > 2) return Status::invalid_argument("limits.max_qos must be 0, 1 or 2");
  if (l.max_queued_messages == 0) return Status::invalid_argument("limits.max_queued_messages must be at least 1");
  if (l.max_queued_bytes == 0) return Status::invalid_argument("limits.max_queued_bytes must be at least 1");
  if (options.log_max_bytes == 0) return Status::invalid_argument("log_max_bytes must be at least 1");
  if (options.log_retention_seconds == 0) return Status::invalid_argument("log_retention_seconds must be at least 1");
  if (l.max_worker_inbox == 0) return Status::invalid_argument("limits.max_worker_inbox must be at least 1");
  if (l.max_client_id_length == 0) return Status::invalid_argument("limits.max_client_id_length must be at least 1");
  if (l.max_topic_levels == 0) return Status::invalid_argument("limits.max_topic_levels must be at least 1");
  if (l.output_high_water_bytes != 0 && l.output_low_water_bytes > l.output_high_water_bytes)
    return Status::invalid_argument("limits.output_low_water_bytes must not exceed limits.output_high_water_bytes");
  if (options.workers > 1024) return Status::invalid_argument("workers must be from 0 to 1024");
  if (options.wake_up_coalesce_us > 1000)
    return Status::invalid_argument("wake_up_coalesce_us must be from 0 to 1000");
  if (options.store_map_size < (1u << 20)) return Status::invalid_argument("store_map_size must be at least 1 MiB");
  // Enumerations set from integers by an embedder must name a value.
  const auto durability_ok = [](Durability d) { return d <= Durability::Memory; };
  if (!durability_ok(options.durability)) return Status::invalid_argument("durability is not durable, async or memory");
  if (l.queue_overflow > QueueOverflow::RefuseNewest)
    return Status::invalid_argument("limits.queue_overflow is not drop_oldest or refuse_newest");
  if (options.log_level > LogLevel::Off) return Status::invalid_argument("log_level is not a log level");
  for (const auto& listener : options.listeners) {
    if (!numeric_address(listener.host))
      return Status::invalid_argument("listener host \"" + listener.host + "\" is not a numeric IPv4 or IPv6 address");
  }
  for (const auto& rule : options.durability_rules) {
    if (!plain_filter(rule.filter))
      return Status::invalid_argument("durability_rules: \"" + rule.filter + "\" is not a topic filter");
    if (!durability_ok(rule.mode))
      return Status::invalid_argument("durability_rules: \"" + rule.filter + "\" has no valid mode");
  }
  for (const auto& rule : options.message_ttl_rules) {
    if (!plain_filter(rule.filter))
      return Status::invalid_argument("message_ttl_rules: \"" + rule.filter + "\" is not a topic filter");
    if (rule.seconds == 0)
      return Status::invalid_argument("message_ttl_rules: \"" + rule.filter + "\" needs at least 1 second");
  }
  for (const auto& filter : options.persisted_filters) {
    if (!plain_filter(filter))
      return Status::invalid_argument("persisted_filters: \"" + filter + "\" is not a topic filter");
  }
  return Status::ok();
}

class BrokerImpl final : public Broker {
 public:
  explicit BrokerImpl(const Options& options)
      : options_(options),
        worker_count_(options.workers != 0 ? options.workers : transport::automatic_worker_count()) {
    sem_init(&stop_request_, 0, 0);
    transport::PoolOptions pool_options;
    pool_options.workers = worker_count_;
    pool_options.max_inbox = options.limits.max_worker_inbox;
    pool_options.tick_interval_ms = kTickIntervalMs;
    pool_options.wake_up_coalesce_us = options.wake_up_coalesce_us;
    transport::WorkerCallbacks callbacks;
    callbacks.open = [this](unsigned w, core::Link& link) { return engine_->worker(w).open(link); };
    callbacks.hand_off = [this](unsigned w) { engine_->worker(w).hand_off(); };
    callbacks.end_of_turn = [this](unsigned w) { return engine_->worker(w).end_of_turn(); };
    callbacks.tick = [this](unsigned w) { engine_->worker(w).tick(engine_->now_ms()); };
    callbacks.draining = [this](unsigned w) { engine_->worker(w).drain(); };
    pool_ = std::make_unique<transport::WorkerPool>(pool_options, std::move(callbacks));
  }

  // Opens the store the options ask for. Separate from the constructor because it can fail.
  Status init() {
    log::set_level(options_.log_level);  // before recovery, which reports what it found
    Store* store = options_.store;
    // A rule or the message log may ask for a store that "memory" overall would not have.
    const Durability strongest = core::strongest_durability(options_);
    if (!store && (strongest != Durability::Memory || !options_.persisted_filters.empty())) {
      LmdbStoreOptions lmdb;
      lmdb.dir = options_.data_dir;
      lmdb.map_size = options_.store_map_size;
      lmdb.sync = strongest == Durability::Durable;
      lmdb.move_aside_unreadable = options_.store_move_aside_unreadable;
      auto opened = open_lmdb_store(lmdb);
      if (!opened) return opened.status();
      owned_store_ = std::move(opened).value();
      store = owned_store_.get();
    }
    engine_ = std::make_unique<core::Engine>(options_, worker_count_, *pool_,
                                             core::SystemClock::instance(), store);
    return engine_->recover();
  }

  ~BrokerImpl() override {
    stop();
    if (engine_) engine_->keep_persisted_messages();
    if (stopper_.joinable()) {
      quitting_ = true;
      sem_post(&stop_request_);
      stopper_.join();
    }
    sem_destroy(&stop_request_);
  }

  Status start() override {
    std::lock_guard lock(mutex_);
    if (state_ != State::Created)
      return Status::unavailable(state_ == State::Running ? "broker already started"
                                                          : "broker stopped: a Broker starts once; create a new one");
    if (Status st = pool_->bind(options_.listeners); !st) return st;
    if (Status st = pool_->start(); !st) return st;
    auto ports = pool_->listening_ports();
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const std::string& host = options_.listeners[i].host;
      log::info("listening on {}:{}", host.find(':') == std::string::npos ? host : "[" + host + "]", ports[i]);
    }
    log::info("broker running with {} workers", worker_count_);
    state_ = State::Running;
    // Waits for a stop request; between requests, trims the message log to its retention.
    stopper_ = std::thread([this] {
      for (;;) {
        timespec deadline{};
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += kLogTrimIntervalSeconds;
        if (sem_timedwait(&stop_request_, &deadline) == 0) break;
        if (errno == ETIMEDOUT) trim_log();
      }
      if (!quitting_) stop();
    });
    return Status::ok();
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      if (state_ != State::Running) {
        if (state_ == State::Created) state_ = State::Stopped;
        stopped_cv_.notify_all();
        return;
      }
      state_ = State::Stopping;
    }
    log::info("stopping");
    publish_stop_wills();
    pool_->stop();
    // The workers are joined: their last writes go to the store from here, and what is still
    // in memory (persistent sessions' messages) must not be deleted from it on release.
    for (unsigned i = 0; i < worker_count_; ++i) engine_->worker(i).flush_writes();
    engine_->keep_persisted_messages();
    if (Store* store = engine_->store()) {
      store->flush();
      if (auto st = storage::lmdb_store_stats(*store)) {
        log::info("store: {} batches in {} commits (average group {:.1f}, largest {}), {} failed",
                  st->batches, st->groups,
                  st->groups ? static_cast<double>(st->batches) / static_cast<double>(st->groups) : 0.0,
                  st->max_group_size, st->failed_batches);
      }
    }
    {
      std::lock_guard lock(mutex_);
      state_ = State::Stopped;
    }
    stopped_cv_.notify_all();
    log::info("stopped");
  }

  // The wills a stop triggers go out before anyone is disconnected, so that every client still
  // connected can receive them, whichever worker it is on: each worker publishes its own and
  // hands them off at once; then every worker runs what it was handed (its inbox is in order).
  void publish_stop_wills() {
    run_on_every_worker([this](unsigned w) {
      engine_->worker(w).publish_stop_wills();
      engine_->worker(w).hand_off();
    });
    run_on_every_worker([](unsigned) {});
  }

  // Runs `task` on every worker and waits for all of them, at most kStopStepTimeout (a worker
  // that does not answer is stopped by the pool anyway).
  void run_on_every_worker(const std::function<void(unsigned)>& task) {
    struct Latch {
      std::mutex mutex;
      std::condition_variable done;
      unsigned left;
    };
    auto latch = std::make_shared<Latch>();
    latch->left = worker_count_;
    for (unsigned w = 0; w < worker_count_; ++w) {
      const bool posted = pool_->post(w, [latch, task, w] {
        task(w);
        std::lock_guard lock(latch->mutex);
        if (--latch->left == 0) latch->done.notify_all();
      });
      if (!posted) {
        std::lock_guard lock(latch->mutex);
        --latch->left;
      }
    }
    std::unique_lock lock(latch->mutex);
    latch->done.wait_for(lock, kStopStepTimeout, [&] { return latch->left == 0; });
  }

  void wait() override {
    std::unique_lock lock(mutex_);
    stopped_cv_.wait(lock, [this] { return state_ == State::Stopped; });
  }

  void request_stop() noexcept override { sem_post(&stop_request_); }

  std::vector<std::uint16_t> listening_ports() const override { return pool_->listening_ports(); }

  Status publish(const Message& m) override {
    if (Status st = api::check_message(m, engine_->limits()); !st) return st;
    {
      std::lock_guard lock(mutex_);
      if (state_ != State::Running) return Status::unavailable("broker is not running");
    }
    // The public Message becomes a core one the way a stored record does.
    StoredMessage record;
    record.message = m;
    record.arrival_ms = core::SystemClock::instance().now_ms();
    if (m.message_expiry_interval)
      record.expires_at_ms = core::expiry_deadline(record.arrival_ms, *m.message_expiry_interval);
    core::MessageRef message = core::from_record(std::move(record), engine_->message_releaser());
    // One calling thread always goes through the same worker, as one client connection does:
    // its messages keep their order (retained values, live delivery, the log), and several
    // publishing threads still spread over the workers.
    const auto w = static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()) % worker_count_);
    core::WorkerCore* worker = &engine_->worker(w);
    // A task must be copyable (std::function) and a message being built has one owner only.
    auto owner = std::make_shared<core::MessageRef>(std::move(message));
    bool posted = pool_->post(w, [worker, owner] { worker->publish(std::move(*owner), nullptr); });
    return posted ? Status::ok() : Status::unavailable("worker inbox full or stopping");
  }

  Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) override {
    if (Store* store = engine_->store()) return store->read_log(from, max);
    return no_store();
  }
  Result<std::uint64_t> log_sequence_at(std::uint64_t time_ms) override {
    if (Store* store = engine_->store()) return store->find_log_time(time_ms);
    return no_store();
  }
  Result<std::uint64_t> consumer_offset(std::string_view consumer) override {
    if (Store* store = engine_->store()) return store->consumer_offset(consumer);
    return no_store();
  }
  Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) override {
    if (Store* store = engine_->store()) return store->commit_consumer_offset(consumer, next);
    return no_store();
  }

  Stats stats() const override {
    Stats s;
    for (unsigned i = 0; i < worker_count_; ++i) {
      const core::Counters& c = engine_->worker(i).counters();
      s.connections += c.connections.load(std::memory_order_relaxed);
      s.sessions += c.sessions.load(std::memory_order_relaxed);
      s.messages_received += c.messages_received.load(std::memory_order_relaxed);
      s.messages_sent += c.messages_sent.load(std::memory_order_relaxed);
      s.messages_dropped += c.messages_dropped.load(std::memory_order_relaxed);
      s.messages_expired += c.messages_expired.load(std::memory_order_relaxed);
      s.protocol_errors += c.protocol_errors.load(std::memory_order_relaxed);
    }
    transport::TransportStats t = pool_->stats();
    s.bytes_received = t.bytes_read;
    s.bytes_sent = t.bytes_written;
    s.messages_dropped += t.inbox_drops;
    s.subscriptions = engine_->index().subscription_count();
    s.retained_messages = engine_->retained().size();
    return s;
  }

 private:
  enum class State { Created, Running, Stopping, Stopped };

  static Status no_store() { return Status::unavailable("no store: durability is \"memory\""); }

  void trim_log() {
    Store* store = engine_->store();
    if (!store || options_.persisted_filters.empty()) return;
    std::uint64_t now = core::SystemClock::instance().now_ms();
    std::uint64_t keep_ms = options_.log_retention_seconds * 1000;
    auto trimmed = store->trim_log(now > keep_ms ? now - keep_ms : 0, options_.log_max_bytes);
    if (!trimmed) log::warn("message log retention: {}", trimmed.status().to_string());
    else if (trimmed.value() > 0) log::info("message log retention dropped {} records", trimmed.value());
  }

  const Options options_;
  const unsigned worker_count_;
  StorePtr owned_store_;  // declared first: destroyed after the engine that writes to it
  std::unique_ptr<transport::WorkerPool> pool_;
  std::unique_ptr<core::Engine> engine_;

  mutable std::mutex mutex_;
  std::condition_variable stopped_cv_;
  State state_ = State::Created;  // guarded by mutex_

  // request_stop() must be async-signal-safe: it posts a semaphore that a helper thread
  // waits on, and that thread runs the real stop().
  sem_t stop_request_;
  std::thread stopper_;
  std::atomic<bool> quitting_{false};
};

}  // namespace

Broker::~Broker() = default;

Status Broker::check(const Options& options) { return check_options(options); }

Result<std::unique_ptr<Broker>> Broker::create(const Options& options) {
  if (Status st = check_options(options); !st) return st;
  auto broker = std::make_unique<BrokerImpl>(options);
  if (Status st = broker->init(); !st) return st;
  return std::unique_ptr<Broker>(std::move(broker));
}

}  // namespace broker
