// Engine::recover: the store's records back into sessions, queues, the index and retained
// messages, before any worker runs.
#include <unordered_map>

#include "broker/store.hpp"
#include "core/engine.hpp"
#include "core/records.hpp"
#include "core/worker_core.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"
#include "util/log.hpp"

namespace broker::core {

namespace {

class Recovery final : public StoreVisitor {
 public:
  explicit Recovery(Engine& engine) : engine_(engine), now_(engine.now_ms()), gone_(now_) {}

  // Written about once a second while the broker ran: a crash came at most one interval later.
  void on_alive(std::uint64_t time_ms) override { gone_ = std::min(time_ms + kAliveMarkIntervalMs, now_); }

  void on_message(StoredMessage&& record) override {
    if (!valid_topic(record, "message")) return;  // its deliveries then find no message
    MessageRef message = from_record(std::move(record), engine_.message_releaser());
    arrived_by_now(*message);
    message->persisted.store(true);
    engine_.raise_message_id_floor(message->id);
    std::uint64_t id = message->id;
    messages_.emplace(id, std::move(message));
  }

  void on_session(StoredSession&& record) override {
    engine_.worker(engine_.home_worker(record.client_id)).restore_session(std::move(record), now_, gone_);
    ++sessions_;
  }

  void on_delivery(StoredDelivery&& record) override {
    WorkerCore& worker = engine_.worker(engine_.home_worker(record.client_id));
    auto it = messages_.find(record.message_id);
    // Its message was acknowledged and deleted just before a crash, or it expired while the
    // broker was down before it was sent [MQTT-3.3.2-5]: nothing to deliver.
    if (it == messages_.end() ||
        (record.state == DeliveryState::Queued && is_expired(*it->second, now_))) {
      worker.forget_stored_delivery(record);
      return;
    }
    if (!record.shared && record.shared_tag >= kFirstRetainedCopyTag)
      engine_.raise_retained_copy_tag_floor(record.shared_tag);
    if (worker.restore_delivery(std::move(record), it->second)) ++deliveries_;
  }

  void on_retained(StoredMessage&& record) override {
    if (!valid_topic(record, "retained message")) {
      engine_.worker(0).forget_stored_retained(record.message.topic);
      return;
    }
    MessageRef message = from_record(std::move(record), engine_.message_releaser());
    arrived_by_now(*message);
    engine_.raise_message_id_floor(message->id);
    // Expired, or on a topic whose durability rule is now "memory": such a topic's later
    // replacements and deletes are never written, so its old record would come back at every
    // start; it goes now, as a memory topic's retained message goes with the process.
    if (is_expired(*message, now_) || engine_.durability_for(message->topic()) == Durability::Memory) {
      // Workers have not started: no write of the same topic can race this delete.
      engine_.worker(0).forget_stored_retained(std::string(message->topic()));
      return;
    }
    if (engine_.retained().set(std::move(message)) == RetainedStore::SetResult::Full) {
      // Past a limit lowered since: kept in the store for a higher one, not served now. A clear
      // of its topic still deletes it (WorkerCore::retain).
      ++retained_over_limit_;
      engine_.note_unserved_retained();
      return;
    }
    ++retained_;
  }

  // A message stored "later" than now was stored before the wall clock went back: it counts as
  // arriving now, so that it lives no longer than its publisher said [MQTT-3.3.2-6].
  void arrived_by_now(Message& message) const {
    if (message.arrival_ms <= now_) return;
    if (message.expires_at_ms != 0) message.expires_at_ms -= message.arrival_ms - now_;
    message.arrival_ms = now_;
  }

  // A plug-in store's records are not trusted further than LMDB's: a topic no client could
  // publish to would go out to subscribers as an invalid PUBLISH.
  static bool valid_topic(const StoredMessage& record, const char* what) {
    if (protocol::valid_topic_name(record.message.topic) && protocol::valid_utf8_string(record.message.topic))
      return true;
    log::warn("store: {} {} has an invalid topic: dropped", what, record.id);
    return false;
  }

  void report() const {
    if (retained_over_limit_ != 0) {
      log::warn("{} stored retained messages are past limits.max_retained_messages or "
                "limits.max_retained_bytes: kept in the store, not served", retained_over_limit_);
    }
    if (sessions_ + deliveries_ + retained_ == 0) return;
    log::info("recovered {} sessions, {} queued messages, {} retained messages", sessions_,
              deliveries_, retained_);
  }

 private:
  Engine& engine_;
  const std::uint64_t now_;
  std::uint64_t gone_;  // when sessions connected at the stop went away
  // Dropped after loading: a message no delivery refers to is deleted then (its deleter).
  std::unordered_map<std::uint64_t, MessagePtr> messages_;
  std::uint64_t sessions_ = 0, deliveries_ = 0, retained_ = 0, retained_over_limit_ = 0;
};

}  // namespace

Status Engine::recover() {
  if (!store_) return Status::ok();
  Recovery recovery(*this);
  if (Status st = store_->load(recovery); !st) return st;
  recovery.report();
  // What came due while the broker was down goes before any client connects: a session that
  // expired meanwhile is not resumed, an overdue will is not cancelled by a quick reconnect.
  const std::uint64_t now = now_ms();
  for (auto& worker : workers_) worker->expire_sessions(now);
  // Store writes, then the wills' deliveries to other workers (run once the workers start).
  for (auto& worker : workers_) worker->hand_off();
  return Status::ok();
}

}  // namespace broker::core
