// The in-memory Store: ordered maps behind one mutex. It mirrors the LMDB store's semantics
// (load order, DeleteSession removing the session's deliveries, log sequences, offsets,
// trimming) so the contract tests hold for both, but keeps nothing across a restart.
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "broker/store.hpp"

namespace broker {
namespace {

// Thread safety: every method is safe from any thread; one mutex serializes them. submit()
// applies the batch and then runs `done` synchronously on the caller's thread, outside the
// lock (so a completion may submit again); a batch is "durable" as soon as it is in the maps.
class MemoryStore final : public Store {
 public:
  Status load(StoreVisitor& visitor) override {
    // Copies first: the visitor may take its time or call back into the store.
    std::vector<StoredMessage> messages, retained;
    std::vector<StoredSession> sessions;
    std::vector<StoredDelivery> deliveries;
    std::optional<std::uint64_t> alive;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, m] : messages_) messages.push_back(m);
      for (const auto& [id, s] : sessions_) sessions.push_back(s);
      for (const auto& [key, d] : deliveries_) deliveries.push_back(d);
      for (const auto& [topic, m] : retained_) retained.push_back(m);
      alive = alive_;
    }
    if (alive) visitor.on_alive(*alive);
    for (auto& m : messages) visitor.on_message(std::move(m));
    for (auto& s : sessions) visitor.on_session(std::move(s));
    for (auto& d : deliveries) visitor.on_delivery(std::move(d));
    for (auto& m : retained) visitor.on_retained(std::move(m));
    return Status::ok();
  }

  void submit(WriteBatch&& batch, std::function<void(const Status&)> done) override {
    {
      std::lock_guard lock(mu_);
      for (const auto& op : batch.ops()) std::visit([this](const auto& o) { apply(o); }, op);
    }
    if (done) done(Status::ok());
  }

  // Nothing is ever pending: submit() completes before it returns.
  void flush() override {}

  Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) override {
    std::lock_guard lock(mu_);
    std::vector<LogRecord> out;
    for (auto it = log_.lower_bound(from); it != log_.end() && out.size() < max; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Result<std::uint64_t> find_log_time(std::uint64_t time_ms) override {
    std::lock_guard lock(mu_);
    // Arrival times follow the wall clock, which may step back, so scan rather than bisect.
    for (const auto& [seq, rec] : log_) {
      if (rec.message.arrival_ms >= time_ms) return seq;
    }
    return next_sequence_;
  }

  Result<std::uint64_t> consumer_offset(std::string_view consumer) override {
    std::lock_guard lock(mu_);
    auto it = offsets_.find(consumer);
    return it == offsets_.end() ? std::uint64_t{0} : it->second;
  }

  Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) override {
    std::lock_guard lock(mu_);
    offsets_[std::string(consumer)] = next;
    return Status::ok();
  }

  Result<std::uint64_t> trim_log(std::uint64_t min_arrival_ms, std::uint64_t max_bytes) override {
    std::lock_guard lock(mu_);
    std::uint64_t dropped = 0;
    std::uint64_t kept_bytes = 0;
    for (auto it = log_.begin(); it != log_.end();) {
      if (it->second.message.arrival_ms < min_arrival_ms) {
        it = log_.erase(it);
        ++dropped;
      } else {
        kept_bytes += it->second.message.message.payload.size();
        ++it;
      }
    }
    for (auto it = log_.begin(); it != log_.end() && kept_bytes > max_bytes;) {
      kept_bytes -= it->second.message.message.payload.size();
      it = log_.erase(it);
      ++dropped;
    }
    return dropped;
  }

 private:
  using DeliveryKey = std::tuple<std::string, std::uint64_t, std::uint32_t>;

  void apply(const WriteBatch::PutSession& op) { sessions_[op.session.client_id] = op.session; }
  void apply(const WriteBatch::DeleteSession& op) {
    sessions_.erase(op.client_id);
    auto first = deliveries_.lower_bound(DeliveryKey{op.client_id, 0, 0});
    auto last = first;
    while (last != deliveries_.end() && std::get<0>(last->first) == op.client_id) ++last;
    deliveries_.erase(first, last);
  }
  void apply(const WriteBatch::PutMessage& op) { messages_[op.message.id] = op.message; }
  void apply(const WriteBatch::DeleteMessage& op) { messages_.erase(op.id); }
  void apply(const WriteBatch::PutDelivery& op) {
    const StoredDelivery& d = op.delivery;
    deliveries_[DeliveryKey{d.client_id, d.message_id, d.shared_tag}] = d;
  }
  void apply(const WriteBatch::DeleteDelivery& op) {
    deliveries_.erase(DeliveryKey{op.client_id, op.message_id, op.shared_tag});
  }
  void apply(const WriteBatch::PutRetained& op) { retained_[op.message.message.topic] = op.message; }
  void apply(const WriteBatch::DeleteRetained& op) {
    auto it = retained_.find(op.topic);
    if (it != retained_.end() && (op.only_id == 0 || it->second.id == op.only_id)) retained_.erase(it);
  }
  void apply(const WriteBatch::MarkAlive& op) { alive_ = op.time_ms; }
  void apply(const WriteBatch::AppendLog& op) {
    std::uint64_t seq = next_sequence_++;
    log_[seq] = LogRecord{seq, op.message};
  }

  std::mutex mu_;
  // All below guarded by mu_. Keys sort as the LMDB store's keys do.
  std::map<std::uint64_t, StoredMessage> messages_;
  std::map<std::string, StoredSession> sessions_;
  std::map<DeliveryKey, StoredDelivery> deliveries_;
  std::map<std::string, StoredMessage> retained_;
  std::map<std::uint64_t, LogRecord> log_;
  std::uint64_t next_sequence_ = 1;
  std::map<std::string, std::uint64_t, std::less<>> offsets_;
  std::optional<std::uint64_t> alive_;
};

}  // namespace

StorePtr make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace broker
