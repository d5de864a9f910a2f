#pragma once
// broker::Store: where the broker keeps what must survive a restart: persistent sessions (with
// subscriptions and will), messages waiting for or in flight to those sessions, retained
// messages, and the message log of persisted topic filters. Two implementations ship: LMDB
// (the embedded default, durable) and memory (fast, for tests and users who want no disk);
// persistence plug-ins implement the same interface.
//
// Write model: the broker's workers build WriteBatches and submit() them; a store applies
// batches atomically and in submission order (one writer, committing several batches per
// transaction when they queue up: group commit), then calls each batch's completion. A QoS 1/2
// PUBLISH that must be durable is acknowledged only from that completion.
//
// Identity: a message is stored once (by its broker-wide id) however many sessions it is
// queued for; a StoredDelivery refers to it by id. The broker deletes a message when its last
// delivery is gone (it counts references; the store does not).
//
// Thread safety: submit(), flush() and the log calls are safe from any thread. load() is
// called once, before any submit(). Completions run on a store-owned thread and must not block.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/message.hpp"
#include "broker/status.hpp"

namespace broker {

struct StoredMessage {
  std::uint64_t id = 0;           // broker-wide unique; also the arrival order
  Message message;                // topic, payload, QoS, retain flag, 5.0 properties
  std::string origin_client_id;   // empty when published by the embedding application
  std::uint64_t arrival_ms = 0;   // wall clock, ms since the Unix epoch
  std::uint64_t expires_at_ms = 0;  // 0 = never
};

struct StoredSubscription {
  std::string filter;  // as subscribed, "$share/<group>/..." included
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  std::uint32_t subscription_id = 0;  // 0 = none
};

struct StoredWill {
  Message message;                  // topic, payload, QoS, retain, properties
  std::uint32_t delay_interval = 0; // seconds
  std::uint64_t publish_at_ms = 0;  // when the client had gone and the delay was running; 0 = not yet
};

struct StoredSession {
  std::string client_id;
  std::uint8_t protocol_version = 4;  // 3, 4 (3.1.1) or 5
  std::uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF = never
  // When the session ends if its client does not come back; 0 = never, or connected when
  // written (a restart counts a connected session as gone since the broker's last MarkAlive,
  // or since the restart when the store holds none).
  std::uint64_t expires_at_ms = 0;
  std::vector<StoredSubscription> subscriptions;
  std::optional<StoredWill> will;
  std::vector<std::uint16_t> inbound_qos2;  // PUBREC sent, PUBREL not yet received
};

enum class DeliveryState : std::uint8_t {
  Queued = 0,        // not yet sent
  AwaitPuback = 1,   // QoS 1 sent
  AwaitPubrec = 2,   // QoS 2 sent
  AwaitPubcomp = 3,  // QoS 2 PUBREC received, PUBREL sent
};

// StoredDelivery::shared_tag of the RETAIN 0 copy (not shared) of a message whose RETAIN 1 copy
// goes to the same session.
inline constexpr std::uint32_t kRetainZeroCopyTag = 1;
// Not shared, tags from this one on name a copy a SUBSCRIBE queued from the retained messages:
// a session may hold several copies of one retained message (overlapping subscriptions, a
// subscription made again, a copy routed live before), each with a record of its own.
inline constexpr std::uint32_t kFirstRetainedCopyTag = 2;

// One message queued for or in flight to one session.
struct StoredDelivery {
  std::string client_id;
  std::uint64_t message_id = 0;
  std::uint8_t qos = 0;
  bool retain = false;
  bool shared = false;  // came through a shared subscription
  // Which shared subscription (a hash of its group and filter; 0 = not shared). Part of the
  // delivery's identity: a session in two groups that both match, or in a group and a plain
  // subscription, holds one copy of the message per subscription. Not shared: 0 for a copy
  // routed live; kRetainZeroCopyTag for the RETAIN 0 copy of a message the session also holds
  // with RETAIN 1 (subscriptions differing in Retain As Published); kFirstRetainedCopyTag or
  // more for a copy sent from the retained messages at a SUBSCRIBE (store format version 3).
  std::uint32_t shared_tag = 0;
  std::vector<std::uint32_t> subscription_ids;
  DeliveryState state = DeliveryState::Queued;
  std::uint16_t packet_id = 0;  // 0 while Queued
};

// A message of the persisted-data log (reported vehicle data), in append order.
struct LogRecord {
  std::uint64_t sequence = 0;  // assigned by the store at append, from 1, increasing
  StoredMessage message;
};

// An ordered list of changes applied atomically. Later operations win over earlier ones.
class WriteBatch {
 public:
  struct PutSession { StoredSession session; };
  // Removes the session and every delivery of it.
  struct DeleteSession { std::string client_id; };
  struct PutMessage { StoredMessage message; };
  struct DeleteMessage { std::uint64_t id; };
  struct PutDelivery { StoredDelivery delivery; };
  struct DeleteDelivery { std::string client_id; std::uint64_t message_id; std::uint32_t shared_tag; };
  struct PutRetained { StoredMessage message; };  // keyed by message.message.topic
  // only_id != 0: deletes the record only while it holds that message (an expired one), so a
  // newer message retained meanwhile from another worker's batch stays.
  struct DeleteRetained { std::string topic; std::uint64_t only_id = 0; };
  struct AppendLog { StoredMessage message; };
  // The broker was running at time_ms (wall clock, written about once a second). A store keeps
  // the latest and load() hands it back, so that after a crash the sessions that were connected
  // count as gone since then, not since the restart: their expiry and will delay do not grow
  // by the time the broker was down. A store may ignore it and lose only that.
  struct MarkAlive { std::uint64_t time_ms; };
  using Op = std::variant<PutSession, DeleteSession, PutMessage, DeleteMessage, PutDelivery,
                          DeleteDelivery, PutRetained, DeleteRetained, AppendLog, MarkAlive>;

  void put_session(StoredSession s) { ops_.emplace_back(PutSession{std::move(s)}); }
  void delete_session(std::string client_id) { ops_.emplace_back(DeleteSession{std::move(client_id)}); }
  void put_message(StoredMessage m) { ops_.emplace_back(PutMessage{std::move(m)}); }
  void delete_message(std::uint64_t id) { ops_.emplace_back(DeleteMessage{id}); }
  void put_delivery(StoredDelivery d) { ops_.emplace_back(PutDelivery{std::move(d)}); }
  void delete_delivery(std::string client_id, std::uint64_t message_id, std::uint32_t shared_tag = 0) {
    ops_.emplace_back(DeleteDelivery{std::move(client_id), message_id, shared_tag});
  }
  void put_retained(StoredMessage m) { ops_.emplace_back(PutRetained{std::move(m)}); }
  void delete_retained(std::string topic, std::uint64_t only_id = 0) {
    ops_.emplace_back(DeleteRetained{std::move(topic), only_id});
  }
  void append_log(StoredMessage m) { ops_.emplace_back(AppendLog{std::move(m)}); }
  void mark_alive(std::uint64_t time_ms) { ops_.emplace_back(MarkAlive{time_ms}); }

  bool empty() const noexcept { return ops_.empty(); }
  std::size_t size() const noexcept { return ops_.size(); }
  const std::vector<Op>& ops() const noexcept { return ops_; }
  void clear() noexcept { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

// What load() hands back. Each call's arguments are valid during the call only.
class StoreVisitor {
 public:
  virtual ~StoreVisitor() = default;
  virtual void on_message(StoredMessage&& message) = 0;
  virtual void on_session(StoredSession&& session) = 0;
  // Per session, in message id order.
  virtual void on_delivery(StoredDelivery&& delivery) = 0;
  virtual void on_retained(StoredMessage&& message) = 0;
  // The latest WriteBatch::MarkAlive time; not called when none was stored.
  virtual void on_alive(std::uint64_t /*time_ms*/) {}
};

// Errors are returned as Status, never thrown: the broker calls a store from its event loops
// and store threads, where an exception ends the process. A store logs its own write failures:
// the broker sees only those of batches it waits on (durable acknowledgements, sessions).
class Store {
 public:
  virtual ~Store() = default;

  // Reads every record back, in this order: the alive time, messages, sessions, deliveries
  // (grouped by client id, each group in message id order), retained messages. Errors: Corruption naming the
  // record that cannot be read; IoError.
  virtual Status load(StoreVisitor& visitor) = 0;

  // Queues `batch`; it is applied atomically after every batch submitted before it. `done`
  // runs exactly once, on the store's thread, when the batch is durable (OK) or has failed
  // (Unavailable for a full map or disk: retry later; IoError). After a failure, later batches
  // are still attempted. `done` may be empty.
  virtual void submit(WriteBatch&& batch, std::function<void(const Status&)> done) = 0;

  // Blocks until every batch submitted before the call has completed.
  virtual void flush() = 0;

  // --- the message log ---
  // Up to `max` records with sequence >= `from`, in order. Errors: IoError, Corruption.
  virtual Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) = 0;
  // The first record whose arrival_ms >= `time_ms` (its sequence), or the next sequence to be
  // written when there is none.
  virtual Result<std::uint64_t> find_log_time(std::uint64_t time_ms) = 0;
  // A consumer's committed offset: the next sequence it wants; 0 when it has none.
  virtual Result<std::uint64_t> consumer_offset(std::string_view consumer) = 0;
  virtual Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) = 0;
  // Drops log records older than `min_arrival_ms` and, oldest first, beyond `max_bytes` of
  // payload. Returns how many were dropped.
  virtual Result<std::uint64_t> trim_log(std::uint64_t min_arrival_ms, std::uint64_t max_bytes) = 0;
};

using StorePtr = std::unique_ptr<Store>;

// The in-memory store: nothing survives the process; completions run at once.
BROKER_EXPORT StorePtr make_memory_store();

struct LmdbStoreOptions {
  // Directory of the environment (created if missing). REQUIRES: not empty.
  std::string dir;
  // Largest size the data file may grow to; LMDB reserves address space, not disk.
  // Default: 16 GiB.
  std::uint64_t map_size = 16ull << 30;
  // true: a batch completes after fsync (durable). false: after the write, before fsync
  // (survives a process crash, not a power loss). Default: true.
  bool sync = true;
  // A data dir that cannot be opened as ours (corrupt, truncated, another program's, a newer
  // format, a record that does not decode: every record is read once to know) is renamed to
  // "<dir>.broken-<unix time>" and an empty store started, instead of failing. Default: false.
  bool move_aside_unreadable = false;
};

// Opens (or creates) the LMDB store in options.dir. Errors: InvalidArgument (empty dir);
// Corruption ("<dir>: not a broker data directory", "unsupported format version 7", a record
// that does not decode) unless move_aside_unreadable; IoError (permissions, disk).
BROKER_EXPORT Result<StorePtr> open_lmdb_store(const LmdbStoreOptions& options);

}  // namespace broker
