#include "core/worker_core.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/client_connection.hpp"
#include "core/engine.hpp"
#include "core/records.hpp"
#include "protocol/topic.hpp"
#include "util/log.hpp"

namespace broker::core {

namespace {
constexpr std::uint64_t kNever = 0xFFFFFFFFu;
// Expired retained messages, and expired messages queued for offline sessions, are purged this
// often (they are also skipped lazily).
constexpr std::uint64_t kExpiryPurgeIntervalMs = 60000;
// A Congested subscriber's backlog is measured this often (far below max_publisher_pause_ms).
constexpr std::uint64_t kProgressSampleMs = 100;
// A subscriber that was Stuck holds no publisher for this many max_publisher_pause_ms after
// it drained: a client that stalls every publisher to its filters 2 s at a time, again and
// again, does so at most one time in eleven.
constexpr std::uint64_t kStuckCooldownFactor = 10;
// Dropped messages are reported in the log at most this often per worker.
}  // namespace

WorkerCore::WorkerCore(Engine& engine, unsigned index, unsigned worker_count)
    : engine_(engine), index_(index), outgoing_(worker_count),
      rng_(std::random_device{}() ^ (std::uint64_t{index} << 32)) {}

WorkerCore::~WorkerCore() { report_drops(0, true); }  // those of the last interval too

std::unique_ptr<ConnectionHandler> WorkerCore::open(Link& link) {
  return std::make_unique<ClientConnection>(*this, link);
}

std::uint64_t WorkerCore::ConnectionSerial::operator()(const ClientConnection& c) const noexcept {
  return c.serial();
}

std::uint64_t WorkerCore::connection_opened(ClientConnection& connection) {
  Counters::add(counters_.connections);
  return connections_.insert(&connection);
}

void WorkerCore::connection_closed(ClientConnection& connection) {
  connections_.erase(connection.serial());
  held_.erase(&connection);
  Counters::sub(counters_.connections);
}

Session* WorkerCore::find_session(std::string_view client_id) {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : it->get();
}

Session& WorkerCore::create_session(const std::string& client_id) {
  const std::uint64_t id = sessions_by_id_.insert(nullptr);
  auto subscriber = make_subscriber(SubscriberKey{index_, id}, client_id);
  auto session = std::make_unique<Session>(std::move(subscriber));
  Session& ref = *session;
  sessions_by_id_.set(id, &ref);
  sessions_.insert(std::move(session));
  Counters::add(counters_.sessions);
  return ref;
}

void WorkerCore::destroy_session(Session& session) {
  if (congested_.erase(&session) != 0) set_flow(session, FlowState::Open);
  // Out of the index first, so no shared message is handed back to this session; the
  // session's filters still tell redistribute_shared which groups its messages came from.
  for (const auto& [filter, options] : session.subscriptions) {
    engine_.index().unsubscribe(session.subscriber->key, filter);
  }
  redistribute_shared(session);
  session.subscriptions.clear();
  if (engine_.store() && session.subscriber->persistent.exchange(false)) {
    batch_.delete_session(session.client_id());  // its deliveries go with it
  }
  offline_timed_.erase(&session);
  retained_backlogs_.erase(session.id());
  sessions_by_id_.erase(session.id());
  sessions_.erase(sessions_.find(session.client_id()));  // destroys `session`
  Counters::sub(counters_.sessions);
}

std::string WorkerCore::assign_client_id() {
  for (;;) {
    std::string id = fmt::format("auto-{:016x}", rng_());
    if (engine_.home_worker(id) == index_ && !sessions_.contains(std::string_view(id))) return id;
  }
}

void WorkerCore::session_online(Session& session) {
  offline_timed_.erase(&session);
}

void WorkerCore::session_offline(Session& session, bool will_wanted) {
  session.subscriber->connected.store(false, std::memory_order_relaxed);
  // Nobody waits for an offline session: its queue has its own bound.
  if (congested_.erase(&session) != 0) set_flow(session, FlowState::Open);
  const std::uint64_t now = engine_.now_ms();
  if (session.will) {
    std::uint32_t delay = session.will->will.properties.will_delay_interval.value_or(0);
    if (!will_wanted) {
      session.will.reset();
    } else if (delay == 0 || will_skips_delay(session)) {
      // [MQTT-3.1.3-9] no delay, or the session ends now: the will goes out now.
      publish_will(session.client_id(), session.will->will);
      session.will.reset();
    } else {
      session.will->publish_at_ms = now + std::uint64_t{delay} * 1000;
    }
  }
  if (session.expiry_interval == 0) {
    destroy_session(session);
    return;
  }
  // An offline member's unacknowledged shared messages go to a member that is online; not
  // while stopping, when every member goes offline and keeps its own for the restart.
  if (!draining_) redistribute_shared(session);
  session.expires_at_ms =
      session.expiry_interval == kNever ? 0 : now + std::uint64_t{session.expiry_interval} * 1000;
  if (session.expires_at_ms != 0 || session.will) offline_timed_.insert(&session);
  persist_session(session);
}

void WorkerCore::publish_will(const std::string& client_id, const protocol::Will& will) {
  MessageRef message = engine_.new_message(will.topic, client_id);
  message->arrival_ms = engine_.now_ms();
  message->payload = will.payload;
  message->qos = will.qos;
  message->retain = will.retain;
  const auto& p = will.properties;
  if (p.message_expiry_interval)
    message->expires_at_ms = expiry_deadline(message->arrival_ms, *p.message_expiry_interval);
  message->set_properties(p);
  publish(std::move(message), nullptr);
}

WorkerCore::Published WorkerCore::publish(MessageRef&& message,
                                          const Session* publisher) {
  message->id = engine_.next_message_id();
  message->durability = engine_.durability_for(message->topic());
  if (message->expires_at_ms == 0) {
    if (auto ttl = engine_.ttl_for(message->topic())) message->expires_at_ms = message->arrival_ms + *ttl * 1000ull;
  }
  const bool logged = engine_.store() && engine_.persisted_topic(message->topic());
  if (logged) batch_.append_log(to_record(*message));
  MessagePtr shared = std::move(message);
  if (shared->retain && engine_.limits().retain_available) retain(shared);
  const bool after_commit = shared->durability == Durability::Durable || logged;
  const std::size_t receivers = route(shared, publisher);
  return Published{receivers, after_commit, std::move(shared)};
}

std::size_t WorkerCore::route(const MessagePtr& message, const Session* publisher) {
  auto& matches = match_scratch_;
  matches.clear();
  const bool watch = holdable(publisher);
  // Read before any delivery below can make a receiver Congested (see feeds_mostly_congested).
  const std::uint32_t epoch = watch ? engine_.congestion_epoch() : 0;
  // Subscribers are fetched only when store_delivery_for may need their persistence flag.
  const bool may_store = engine_.store() != nullptr && message->qos > 0 &&
                         message->durability != Durability::Memory;
  const bool distinct = engine_.index().match(index_, message->topic(), matches, may_store);
  if (matches.empty()) return 0;
  // Overlapping subscriptions of one session give one delivery with the highest QoS and all
  // subscription identifiers [MQTT-3.3.4-2], [MQTT-3.3.4-3]; group them by session (a
  // broadcast from one subscriber list has nothing to group: no sort of a million matches).
  // A retained message matched both with and without Retain As Published goes twice, RETAIN 1
  // and RETAIN 0, each copy with its subscriptions' identifiers [MQTT-3.3.1-12, 3.3.1-13].
  if (!distinct) {
    std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
      if (a.shared != b.shared) return a.shared < b.shared;
      if (a.key.worker != b.key.worker) return a.key.worker < b.key.worker;
      return a.key.session_id < b.key.session_id;
    });
  }
  const SubscriberKey* self = publisher ? &publisher->subscriber->key : nullptr;
  std::size_t receivers = 0;
  route_blockers_.clear();
  // Congested receivers may hold the publisher (never its own session: a client that does not
  // read while it writes would wait for itself).
  auto watch_flow = [&](const Match& m) {
    // No Subscriber in a plain match means it was Open when matched (see TopicIndex::match).
    if (watch && m.subscriber && flow_of(*m.subscriber) == FlowState::Congested && !(*self == m.key))
      route_blockers_.subscribers.push_back(m.subscriber);
  };
  std::size_t i = 0;
  while (i < matches.size() && !matches[i].shared) {
    std::size_t j = i;
    Delivery copies[2];  // [0]: RETAIN 0; [1]: retained as published
    bool wanted[2] = {false, false};
    for (; j < matches.size() && !matches[j].shared && matches[j].key == matches[i].key; ++j) {
      const auto& o = matches[j].options;
      if (o.no_local && self && *self == matches[j].key) continue;  // [MQTT-3.8.3-3]
      const int as_published = o.retain_as_published && message->retain ? 1 : 0;
      Delivery& delivery = copies[as_published];
      wanted[as_published] = true;
      delivery.qos = std::max(delivery.qos, std::min(o.qos, message->qos));
      if (o.subscription_id) delivery.subscription_ids.push_back(o.subscription_id);
    }
    if (wanted[0] || wanted[1]) {
      watch_flow(matches[i]);
      ++receivers;
    }
    for (int k = 0; k < 2; ++k) {
      if (!wanted[k]) continue;
      Delivery& delivery = copies[k];
      delivery.retain = k == 1;
      if (k == 0 && wanted[1]) delivery.shared_tag = kRetainZeroCopyTag;
      delivery.message = message;
      if (matches[i].subscriber) store_delivery_for(*matches[i].subscriber, delivery);
      send_to(matches[i], std::move(delivery));
    }
    i = j;
  }
  for (; i < matches.size(); ++i) {
    const auto& o = matches[i].options;
    Delivery delivery;
    delivery.message = message;
    delivery.qos = std::min(o.qos, message->qos);
    delivery.retain = o.retain_as_published && message->retain;
    if (o.subscription_id) delivery.subscription_ids.push_back(o.subscription_id);
    delivery.shared = true;
    delivery.shared_tag = matches[i].shared_tag;
    watch_flow(matches[i]);
    store_delivery_for(*matches[i].subscriber, delivery);
    send_to(matches[i], std::move(delivery));
    ++receivers;
  }
  if (watch) {
    auto& congested = route_blockers_.subscribers;
    const std::size_t open = receivers - congested.size();
    if (!congested.empty() && !feeds_mostly_congested(*publisher->connection, open)) congested.clear();
    route_blockers_.receivers = receivers;
    if (open != 0) publisher->connection->set_last_open_epoch(epoch);
    // A worker whose inbox is filling up holds the publisher too, before a batch is dropped.
    const std::uint64_t high = inbox_high_water(engine_.limits().max_worker_inbox);
    for (unsigned w = 0; w < outgoing_.size(); ++w) {
      if (w == index_ || outgoing_[w].empty()) continue;
      if (outgoing_[w].size() + engine_.inbox_load(w).load(std::memory_order_relaxed) > high)
        route_blockers_.inboxes |= waiter_bit(w);
    }
  }
  return receivers;
}

// --- publisher back-pressure ---

bool WorkerCore::holdable(const Session* publisher) const noexcept {
  return publisher && publisher->connection && engine_.limits().output_high_water_bytes != 0;
}

bool WorkerCore::takes_held_output(const Session& session) const {
  const Subscriber& subscriber = *session.subscriber;
  if (flow_of(subscriber) != FlowState::Congested) return false;
  if (subscriber.waiters.load(std::memory_order_relaxed) != 0) return true;  // a publisher waits
  auto it = congested_.find(const_cast<Session*>(&session));
  return it != congested_.end() && engine_.now_ms() - it->second.since_ms < kHoldGraceMs;
}

bool WorkerCore::feeds_mostly_congested(const ClientConnection& publisher, std::size_t open) const {
  const auto& congested = route_blockers_.subscribers;
  // A fan-out that half its receivers cannot keep up with waits for them; one slow vehicle
  // among a fleet's broadcast receivers waits alone, within its own queue's bounds.
  if (open != 0) return at_least_half(congested.size(), congested.size() + open);
  // Every receiver of this PUBLISH is Congested: a publisher that feeds only them (a vehicle's
  // telemetry to its consumer, a fan-in) is held; one that reached an Open receiver since they
  // became Congested (a platform sending each vehicle its own commands) is not.
  for (const SubscriberPtr& s : congested) {
    if (epoch_before(publisher.last_open_epoch(), s->congested_epoch.load(std::memory_order_relaxed))) return true;
  }
  return false;
}

void WorkerCore::check_output(Session& session, ClientConnection& connection) {
  const Limits& limits = engine_.limits();
  if (limits.output_high_water_bytes == 0) return;
  const bool over = connection.pending_bytes() > limits.output_high_water_bytes ||
                    session.queue.size() > limits.max_queued_messages / 2 ||
                    session.queued_bytes > limits.max_queued_bytes / 2;
  if (over && flow_of(*session.subscriber) == FlowState::Open && !cooling_down(session)) {
    // The flag before the epoch: a route that reads the new epoch then sees the flag, so it
    // cannot stamp its publisher with that epoch as having reached this subscriber Open.
    set_flow(session, FlowState::Congested);
    session.subscriber->congested_epoch.store(engine_.next_congestion_epoch(), std::memory_order_relaxed);
    const std::uint64_t now = engine_.now_ms();
    congested_.emplace(&session, Congestion{now, now, backlog_of(session, connection), now});
  }
}

std::uint64_t WorkerCore::backlog_of(const Session& session, const ClientConnection& connection) {
  // The kernel's send queue counts: what a reader takes from it (QoS 0 written ahead of a full
  // QoS 1 window, say) is progress that neither the link's buffer nor the queue would show.
  return connection.pending_bytes() + connection.unsent_in_kernel() + session.queued_bytes;
}

bool WorkerCore::cooling_down(const Session& session) const {
  if (hold_cooldown_.empty()) return false;  // tick() drops the entries that ran out
  auto it = hold_cooldown_.find(session.id());
  return it != hold_cooldown_.end() && it->second > engine_.now_ms();
}

void WorkerCore::update_congested(std::uint64_t now_ms) {
  const Limits& limits = engine_.limits();
  const std::uint64_t low = std::min(limits.output_low_water_bytes, limits.output_high_water_bytes);
  for (auto it = congested_.begin(); it != congested_.end();) {
    Session& session = *it->first;
    const ClientConnection* connection = session.connection;
    const bool drained = !connection || !connection->connected() ||
                         (connection->pending_bytes() <= low &&
                          session.queue.size() <= limits.max_queued_messages / 4 &&
                          session.queued_bytes <= limits.max_queued_bytes / 4);
    if (drained) {
      // One that was Stuck holds nobody for a while: a client that fills its own output and
      // then drains it must not stall the publishers of everything it subscribed to, over and
      // over.
      if (flow_of(*session.subscriber) == FlowState::Stuck)
        hold_cooldown_[session.id()] = now_ms + kStuckCooldownFactor * limits.max_publisher_pause_ms;
      set_flow(session, FlowState::Open);
      it = congested_.erase(it);
      continue;
    }
    // Progress: a reader that takes output_low_water_bytes of its backlog within
    // max_publisher_pause_ms is slow, not stuck, and may go on holding its publishers. Measured
    // now and then (the kernel's share is a system call).
    Congestion& c = it->second;
    if (now_ms - c.measured_ms < kProgressSampleMs) {
      ++it;
      continue;
    }
    c.measured_ms = now_ms;
    const std::uint64_t backlog = backlog_of(session, *connection);
    const std::uint64_t step = std::max<std::uint64_t>(low, 1);
    if (backlog + step <= c.backlog_then || backlog > c.backlog_then) {
      // Fell far enough, or grew (publishers that cannot be held): measure from here.
      if (backlog + step <= c.backlog_then) c.progress_ms = now_ms;
      c.backlog_then = backlog;
    }
    if (flow_of(*session.subscriber) == FlowState::Congested &&
        now_ms - c.progress_ms >= limits.max_publisher_pause_ms) {
      // A reader without progress for this long is dead or stuck: it no longer holds anyone.
      log::debug("{}: output not drained within {} ms; publishers are no longer held for it",
                 session.client_id(), limits.max_publisher_pause_ms);
      set_flow(session, FlowState::Stuck);
    }
    ++it;
  }
}

void WorkerCore::set_flow(Session& session, FlowState state) {
  Subscriber& subscriber = *session.subscriber;
  // Sequentially consistent with the publisher's "set waiter bit, then read the state", so
  // either it sees the new state or we see its bit.
  engine_.index().set_flow(subscriber, static_cast<std::uint8_t>(state));
  if (state != FlowState::Congested && subscriber.waiters.load() != 0) wake(subscriber.waiters.exchange(0));
}

void WorkerCore::wake(std::uint64_t mask) {
  for (unsigned w = 0; w < outgoing_.size() && mask != 0; ++w) {
    if ((mask & waiter_bit(w)) == 0 || w == index_) continue;
    // The task only wakes the worker: its end_of_turn looks at its held publishers every turn.
    (void)engine_.dispatcher().post(w, [] {});
  }
}

void WorkerCore::drop_drained(Blockers& blockers) {
  const std::uint64_t bit = waiter_bit(index_);
  // Ask for a wake-up first, then look again: a drain in between is seen. Our bit may have
  // gone with a wake-up for an earlier congestion, so it is set again when missing.
  std::erase_if(blockers.subscribers, [bit](const SubscriberPtr& s) {
    if (flow_of(*s) != FlowState::Congested) return true;
    if ((s->waiters.load() & bit) == 0) s->waiters.fetch_or(bit);
    return !still_congested(*s);
  });
  // Held while at least half of the PUBLISH's receivers are Congested: once the others
  // drained, a slow few hold it no longer (nor take more than their own bounds for it).
  if (!blockers.subscribers.empty() && !at_least_half(blockers.subscribers.size(), blockers.receivers)) {
    for (const SubscriberPtr& s : blockers.subscribers) s->waiters.fetch_and(~bit);
    blockers.subscribers.clear();
    took_back_waiter_bits_ = true;
  }
  const std::uint64_t low = inbox_low_water(engine_.limits().max_worker_inbox);
  for (unsigned w = 0; w < outgoing_.size(); ++w) {
    if ((blockers.inboxes & waiter_bit(w)) == 0) continue;
    auto& waiters = engine_.inbox_waiters(w);
    if ((waiters.load() & bit) == 0) waiters.fetch_or(bit);
    if (outgoing_[w].size() + engine_.inbox_load(w).load() <= low) blockers.inboxes &= ~waiter_bit(w);
  }
}

bool WorkerCore::hold_publisher(ClientConnection& connection) {
  drop_drained(route_blockers_);
  const bool blocked = !route_blockers_.empty();
  if (blocked) {
    auto [it, inserted] = held_.try_emplace(&connection);
    HeldPublisher& held = it->second;
    if (inserted) held.since_ms = engine_.now_ms();
    for (auto& s : route_blockers_.subscribers) held.blockers.subscribers.push_back(std::move(s));
    held.blockers.receivers = std::max(held.blockers.receivers, route_blockers_.receivers);
    held.blockers.inboxes |= route_blockers_.inboxes;
    connection.hold();
  }
  route_blockers_.clear();
  return blocked;
}

void WorkerCore::hold_reader(ClientConnection& connection) {
  auto [it, inserted] = held_.try_emplace(&connection);
  if (inserted) it->second.since_ms = engine_.now_ms();
  it->second.own_output = true;
  it->second.output_then = connection.pending_bytes();
  connection.hold(true);
}

void WorkerCore::stash_input(ClientConnection& connection, std::string_view bytes) {
  held_[&connection].input.append(bytes);
}

std::string WorkerCore::take_input_until_connack(std::uint64_t serial) {
  auto node = input_until_connack_.extract(serial);
  return node ? std::move(node.mapped()) : std::string();
}

void WorkerCore::recheck_held(std::uint64_t now_ms) {
  const std::uint64_t max_pause = engine_.limits().max_publisher_pause_ms;
  std::vector<ClientConnection*> ready;
  for (auto& [connection, held] : held_) {
    // A subscriber's worker decides when it stops holding (Open, or Stuck without progress);
    // an inbox that does not drain within max_pause (a stopping worker) holds no longer.
    if (now_ms - held.since_ms >= max_pause) held.blockers.inboxes = 0;
    drop_drained(held.blockers);
    if (held.own_output) {
      // A client that takes its output is alive even though its own packets wait unread; so is
      // one whose packets (a PINGREQ on time) keep arriving while it is not read: keep alive
      // must not close it for a silence the broker made [MQTT-3.1.2-24].
      const std::size_t pending = connection->pending_bytes();
      if (pending < held.output_then) connection->alive_while_held(now_ms, false);
      held.output_then = pending;
      if (now_ms - held.unread_seen_ms >= 1000) {
        const std::size_t unread = connection->unread_in_kernel();
        if (unread > held.unread_then) connection->alive_while_held(now_ms, false);
        held.unread_then = unread;
        held.unread_seen_ms = now_ms;
      }
      if (pending > engine_.limits().output_low_water_bytes) continue;
      held.own_output = false;
      connection->alive_while_held(now_ms, true);  // only its publishing is held now, if anything
    }
  }
  // A publisher may have taken our bit back from a receiver that another one, looked at
  // earlier, still waits for: without it that receiver's drain would not wake this worker.
  // They ask again. Each pass that takes bits back empties a list, so this ends.
  while (std::exchange(took_back_waiter_bits_, false)) {
    for (auto& [connection, held] : held_)
      if (!held.blockers.subscribers.empty()) drop_drained(held.blockers);
  }
  for (auto& [connection, held] : held_)
    if (!held.own_output && held.blockers.empty()) ready.push_back(connection);
  for (ClientConnection* connection : ready) {
    auto it = held_.find(connection);
    if (it == held_.end()) continue;
    std::string input = std::move(it->second.input);
    held_.erase(it);
    // May hold it again (a new entry) or close it; never destroys it here.
    connection->release(std::move(input));
  }
}

void WorkerCore::send_to(const Match& target, Delivery&& delivery) {
  // Stored: whoever receives it must be able to delete its record (deliver_to).
  SubscriberPtr stored_for = delivery.stored ? target.subscriber : SubscriberPtr();
  if (target.key.worker == index_) {
    deliver_to(target.key.session_id, std::move(delivery), stored_for);
    return;
  }
  outgoing_[target.key.worker].push_back(BatchItem{target.key.session_id, std::move(delivery), std::move(stored_for)});
}

bool WorkerCore::end_of_turn() {
  if (!output_waiters_.empty()) pump_output_waiters();
  if (!congested_.empty() || !held_.empty()) {
    const std::uint64_t now = engine_.now_ms();
    update_congested(now);
    // Every turn, not only on a wake-up: cheap, and a hold can never outlive its cause.
    if (!held_.empty()) recheck_held(now);
  }
  walk_budget_ = kWalkNodesPerTurn;  // for the walks that go on
  const bool walking = !retained_backlogs_.empty() && feed_retained_backlogs();
  walk_budget_ = kWalkNodesPerTurn;  // for the next turn's SUBSCRIBEs
  hand_off();
  return walking;
}

std::uint64_t WorkerCore::queued_output_bound() const noexcept {
  return std::max(engine_.limits().max_pending_output_bytes, engine_.limits().max_queued_bytes);
}

void WorkerCore::pump_output_waiters() {
  const std::uint64_t output_bound = queued_output_bound();
  waiter_ids_.assign(output_waiters_.begin(), output_waiters_.end());
  for (const std::uint64_t id : waiter_ids_) {
    Session* session = sessions_by_id_.find(id);
    const ClientConnection* connection = session ? session->connection : nullptr;
    // Gone or offline: resuming pumps it. Still full: next turn.
    if (connection && connection->connected() && connection->pending_bytes() > output_bound) continue;
    output_waiters_.erase(id);
    if (session) pump(*session);  // may wait again
  }
}

void WorkerCore::hand_off() {
  // Store writes go first: a delivery's record must be queued in the store before the worker
  // that owns the session can change or delete it.
  flush_writes();
  for (unsigned w = 0; w < outgoing_.size(); ++w) {
    if (outgoing_[w].empty()) continue;
    auto batch = std::move(outgoing_[w]);
    const std::size_t count = batch.size();
    // The next turn's batch starts with room for about as many: one allocation instead of a
    // chain of doublings (bounded, so one broadcast does not pin its size for good).
    outgoing_[w] = {};
    outgoing_[w].reserve(std::min<std::size_t>(count, 256));
    // A worker that cannot keep up must not grow memory without bound: past the bound, the
    // batch is dropped and counted (the target's session queues stay bounded on their own).
    auto& load = engine_.inbox_load(w);
    const std::uint64_t waiting = load.load(std::memory_order_relaxed);
    // An empty inbox takes any batch: a broadcast larger than the bound must still go out.
    if (waiting > 0 && waiting + count > engine_.limits().max_worker_inbox) {
      Counters::add(counters_.messages_dropped, count);
      if (inbox_warning_.allow(engine_.now_ms())) {
        log::warn("worker {} inbox full ({} deliveries): deliveries dropped", w, load.load());
      }
      continue;
    }
    load.fetch_add(count, std::memory_order_relaxed);
    WorkerCore* target = &engine_.worker(w);
    bool posted = engine_.dispatcher().post(
        w, [target, b = std::move(batch)]() mutable { target->receive_batch(std::move(b)); });
    if (!posted) {
      load.fetch_sub(count, std::memory_order_relaxed);
      Counters::add(counters_.messages_dropped, count);
    }
  }
}

void WorkerCore::receive_batch(std::vector<BatchItem>&& batch) {
  // Sequentially consistent with the publisher's "set waiter bit, then read the load".
  const std::uint64_t left = engine_.inbox_load(index_).fetch_sub(batch.size()) - batch.size();
  auto& waiters = engine_.inbox_waiters(index_);
  if (left <= inbox_low_water(engine_.limits().max_worker_inbox) && waiters.load() != 0)
    wake(waiters.exchange(0));
  for (auto& item : batch) deliver_to(item.session_id, std::move(item.delivery), item.stored_for);
}

void WorkerCore::deliver_to(std::uint64_t session_id, Delivery&& delivery, const SubscriberPtr& stored_for) {
  if (Session* session = sessions_by_id_.find(session_id)) {
    deliver(*session, std::move(delivery));
    return;
  }
  // The session ended (which deleted its records) while this was on its way. The routing
  // worker's write of its record may have committed after that delete; left there, it would
  // come back after a restart in the client id's next persistent session.
  if (stored_for) unpersist_delivery(stored_for->client_id, delivery);
  delivery.stored = false;
  if (delivery.shared && !draining_) reroute_shared(std::move(delivery));
}

void WorkerCore::reroute_shared(Delivery&& delivery) {
  // Matched again: the group's pick now skips the member that left (it is out of the index
  // before its session goes).
  std::optional<Match> member = pick_group_member(delivery, nullptr);
  if (!member) {
    Counters::add(counters_.messages_dropped);  // the group has no member left
    return;
  }
  delivery.shared_tag = member->shared_tag;
  hand_to_member(std::move(delivery), *member);
}

std::optional<Match> WorkerCore::pick_group_member(const Delivery& delivery,
                                                   const SubscriberKey* except) {
  std::vector<Match> matches;
  engine_.index().match(index_, delivery.message->topic(), matches);
  for (Match& m : matches) {
    if (!m.shared || (delivery.shared_tag != 0 && m.shared_tag != delivery.shared_tag)) continue;
    if (except && m.key == *except) continue;
    return std::move(m);
  }
  return std::nullopt;
}

void WorkerCore::hand_to_member(Delivery&& delivery, const Match& member) {
  delivery.qos = std::min(member.options.qos, delivery.message->qos);
  delivery.subscription_ids.clear();
  if (member.options.subscription_id) delivery.subscription_ids.push_back(member.options.subscription_id);
  delivery.stored = false;
  store_delivery_for(*member.subscriber, delivery);
  send_to(member, std::move(delivery));
}

void WorkerCore::deliver(Session& session, Delivery&& delivery) {
  const Limits& limits = engine_.limits();
  if (discarded(session, delivery, delivery.message->expires_at_ms != 0 ? engine_.now_ms() : 0)) return;
  // Stored by a worker that routed it while the session was persistent; it is not any more
  // (resumed with Session Expiry 0), and a record left behind would come back after a restart
  // in the client id's next persistent session.
  if (delivery.stored && !session.subscriber->persistent.load(std::memory_order_relaxed)) {
    unpersist_delivery(session, delivery);
    delivery.stored = false;
  }
  // Live, not a new subscription's retained copy (those are queued by the retained backlog):
  // 3.1.1 has no Retain As Published, and a 3.1.1 client may resume a session whose
  // subscriptions a 5.0 client made with it [MQTT-3.3.1-9].
  if (delivery.retain && session.version != protocol::ProtocolVersion::V5) delivery.retain = false;
  // Behind a retained backlog (queue_retained), so that a live message cannot arrive before
  // an older retained one for its topic.
  if (!retained_backlogs_.empty()) {
    if (auto it = retained_backlogs_.find(session.id()); it != retained_backlogs_.end()) {
      wait_behind_backlog(session, it->second, std::move(delivery));
      return;
    }
  }
  ClientConnection* connection = session.connection;
  const bool online = connection && connection->connected();
  if (!online && lives_no_time(*delivery.message)) {  // not kept for later [MQTT-3.3.2-5]
    Counters::add(counters_.messages_expired);
    unpersist_delivery(session, delivery);
    return;
  }
  // QoS 0 is not subject to the inflight window [MQTT-4.9.0-?]: it goes out now even when
  // QoS 1/2 messages wait for the window, but not before one waiting for the store, nor
  // before a QoS 0 message still queued (one that came while it was offline, or behind a
  // retained backlog) [MQTT-4.6.0-6].
  if (delivery.qos == 0 && !session.queue.holds_qos0() && !(online && waiting_for_store(session))) {
    if (online) {
      // A reader that does not keep up loses QoS 0 messages, not broker memory; while it holds
      // publishers it still takes what they had already read (bounded).
      const std::size_t pending = connection->pending_bytes();
      if (pending > limits.max_pending_output_bytes &&
          (!takes_held_output(session) ||
           pending > kHeldOutputFactor * limits.max_pending_output_bytes)) {
        Counters::add(counters_.messages_dropped);
      } else {
        connection->send_publish(delivery, 0, false);
      }
      check_output(session, *connection);  // may hold its publishers from now on
      return;
    }
    if (!connection && !limits.queue_qos0_offline) {
      Counters::add(counters_.messages_dropped);
      return;
    }
  }
  const std::uint64_t size = queued_size(delivery);
  // One message larger than the byte bound by itself (a 9 MiB configuration file under the
  // 8 MiB default) waits beside the others, counted neither in their bytes nor their number:
  // it does not push out the commands queued before it, which it could never fit with, nor do
  // the ones after it push it out. A second one takes its place (drop_oldest) or is refused.
  const bool is_oversize = oversize(delivery, limits.max_queued_bytes);
  // While it holds publishers, the queue also takes what they had routed before the hold
  // reached them (other workers' inboxes, one read each): bounded, but not dropped.
  auto over_times = [&](std::uint64_t room) {
    const DeliveryQueue& q = session.queue;
    if (is_oversize) return q.oversize_count() != 0;
    return q.size() - q.oversize_count() >= room * limits.max_queued_messages ||
           session.queued_bytes - q.oversize_bytes() + size > room * limits.max_queued_bytes;
  };
  auto over = [&] {
    return over_times(1) && (!takes_held_output(session) || over_times(kHeldOutputFactor));
  };
  if (over()) {
    // Expired messages at the front go first: never to be sent, they must not cost a vehicle
    // a live one, even under refuse_newest (the periodic purge finds those further back).
    const std::uint64_t now = engine_.now_ms();
    while (over() && !session.queue.empty() && is_expired(*session.queue.front().message, now)) {
      pop_queued_front(session);
      Counters::add(counters_.messages_expired);
    }
  }
  if (over() && !session.queue.empty()) {
    // QoS 0 gives way first, under either policy: QoS 0 traffic must neither push a vehicle's
    // QoS 1/2 messages out of its queue nor keep them out.
    const bool refuse = limits.queue_overflow == QueueOverflow::RefuseNewest;
    if (delivery.qos == 0 && (refuse || !session.queue.holds_qos0())) {
      Counters::add(counters_.messages_dropped);
      return;
    }
    // Room is made among its own kind: an oversize message for an oversize one, the others
    // for the others.
    while (over() && pop_oldest(session, true, is_oversize)) Counters::add(counters_.messages_dropped);
    if (over() && (refuse || delivery.qos == 0)) {
      Counters::add(counters_.messages_dropped);
      unpersist_delivery(session, delivery);
      return;
    }
    while (over() && pop_oldest(session, false, is_oversize))
      Counters::add(counters_.messages_dropped);
  }
  // Deliveries that did not come through route() (retained on subscribe, a shared message
  // moved here) are stored here when the session needs them to survive a restart.
  if (!delivery.stored) store_delivery_for(*session.subscriber, delivery);
  session.queued_bytes += size;
  session.queue.push_back(std::move(delivery), engine_.limits().max_queued_bytes);
  pump(session);
}

bool WorkerCore::discarded(Session& session, const Delivery& delivery, std::uint64_t now_ms) {
  if (is_expired(*delivery.message, now_ms)) {  // [MQTT-3.3.2-5]
    Counters::add(counters_.messages_expired);
  } else if (delivery.message->refused.load(std::memory_order_relaxed)) {
    Counters::add(counters_.messages_dropped);
  } else {
    return false;
  }
  unpersist_delivery(session, delivery);
  return true;
}

void WorkerCore::release_queued(Session& session, const Delivery& delivery) {
  session.queued_bytes -= queued_size(delivery);
  unpersist_delivery(session, delivery);
}

void WorkerCore::pop_queued_front(Session& session) {
  release_queued(session, session.queue.front());
  session.queue.pop_front();
}

bool WorkerCore::pop_oldest(Session& session, bool qos0_only, bool of_oversize) {
  const std::uint64_t bound = engine_.limits().max_queued_bytes;
  for (auto it = session.queue.begin(); it != session.queue.end(); ++it) {
    if ((qos0_only && it->qos != 0) || oversize(*it, bound) != of_oversize) continue;
    release_queued(session, *it);
    session.queue.erase(it);
    return true;
  }
  return false;
}

void WorkerCore::resume_inflight(Session& session) {
  for (auto& [packet_id, inflight] : session.inflight) {
    // Still waiting for the store: its after-commit callback sends it, on this connection
    // (exactly once must hold across a crash, so it never goes out before its state is on disk).
    if (!inflight.sent && !inflight.held) continue;
    if (inflight.state == InflightMessage::State::AwaitPubcomp) {
      session.connection->send_pubrel(packet_id);  // a PUBREL takes no more room
      inflight.sent = true;
      inflight.held = false;
    } else {
      inflight.sent = false;
      inflight.held = true;
      session.resend_held = true;
    }
  }
}

void WorkerCore::send_held(Session& session, ClientConnection& connection, std::size_t window) {
  std::size_t held = 0;
  for (auto& [packet_id, inflight] : session.inflight) {
    // A PUBREC for it came before we resent it: only its PUBREL (sent then) is left.
    if (inflight.held && inflight.state == InflightMessage::State::AwaitPubcomp) inflight.held = false;
    held += inflight.held ? 1 : 0;
  }
  std::size_t in_flight = session.inflight.size() - held;
  for (auto it = session.inflight.begin(); it != session.inflight.end() && held > 0;) {
    InflightMessage& inflight = it->second;
    if (!inflight.held) {
      ++it;
      continue;
    }
    if (in_flight >= window) break;
    inflight.held = false;
    --held;
    ++in_flight;
    inflight.sent = true;
    const bool dup = inflight.resend_as_dup;
    inflight.resend_as_dup = true;
    if (!connection.send_publish(inflight.delivery, it->first, dup)) {
      unpersist_delivery(session, inflight.delivery);  // too large: dropped as if delivered
      it = session.inflight.erase(it);
      --in_flight;
      continue;
    }
    ++it;
  }
  session.resend_held = held > 0;
}

bool WorkerCore::waiting_for_store(Session& session) {
  return !session.inflight.empty() &&
         std::any_of(session.inflight.begin(), session.inflight.end(),
                     [](const auto& entry) { return !entry.second.sent && !entry.second.held; });
}

std::size_t WorkerCore::send_window(const ClientConnection& connection) const {
  return std::min<std::size_t>(engine_.limits().max_inflight, connection.receive_maximum());
}

void WorkerCore::pump(Session& session) {
  ClientConnection* connection = session.connection;
  if (!connection || !connection->connected()) return;
  const std::size_t window = send_window(*connection);
  if (session.resend_held) send_held(session, *connection, window);
  do {
    send_queued(session, *connection, window);
  } while (!retained_backlogs_.empty() && refill_from_backlog(session, *connection));
  check_output(session, *connection);
}

void WorkerCore::queue_retained(Session& session, const std::string& filter,
                                const SubscriptionOptions& options) {
  const std::uint64_t first_live_id = engine_.first_unassigned_message_id();
  RetainedBacklog::Snapshot snapshot;
  if (!protocol::has_wildcard(filter)) {
    // One topic: a lookup, not a walk.
    MessagePtr message = engine_.retained().current(filter, engine_.now_ms());
    if (message && message->id < first_live_id) snapshot.messages.push_back(std::move(message));
    if (snapshot.messages.empty() && !retained_backlogs_.contains(session.id())) return;
  } else {
    snapshot.walk = engine_.retained().start_walk(filter);
  }
  RetainedBacklog& backlog = retained_backlogs_[session.id()];
  backlog.cancel_snapshots(filter);
  snapshot.filter = filter;
  snapshot.options = options;
  snapshot.first_live_id = first_live_id;
  snapshot.copy_tag = engine_.next_retained_copy_tag();
  backlog.snapshot_waiting += snapshot.messages.size();
  const auto index = static_cast<std::uint32_t>(backlog.snapshots.size());
  backlog.entries.push_back({RetainedBacklog::Kind::Snapshot, {}, index});
  backlog.snapshots.push_back(std::move(snapshot));
  advance_walks(backlog);
  pump(session);
}

bool WorkerCore::advance_walks(RetainedBacklog& backlog) {
  const std::uint64_t cap = engine_.limits().max_retained_messages;
  for (auto& snapshot : backlog.snapshots) {
    while (snapshot.walk) {
      if (backlog.snapshot_waiting >= cap) return false;
      if (walk_budget_ == 0) return true;
      walked_.clear();
      const std::size_t counted = engine_.retained().walk(*snapshot.walk, engine_.now_ms(), walk_budget_, walked_);
      walk_budget_ -= std::min(walk_budget_, counted);
      if (snapshot.walk->done()) snapshot.walk.reset();
      for (auto& message : walked_) {
        if (message->id >= snapshot.first_live_id) continue;  // routed to the subscription live
        ++backlog.snapshot_waiting;
        snapshot.messages.push_back(std::move(message));
      }
    }
  }
  return false;
}

void WorkerCore::wait_behind_backlog(Session& session, RetainedBacklog& backlog, Delivery&& delivery) {
  const Limits& limits = engine_.limits();
  const std::uint64_t size = queued_size(delivery);
  // Bounded as the session queue is while its publishers are held; past it the newest goes.
  if ((delivery.qos == 0 && !session.connection && !limits.queue_qos0_offline) ||
      backlog.live >= kHeldOutputFactor * limits.max_queued_messages ||
      backlog.live_bytes + size > kHeldOutputFactor * limits.max_queued_bytes) {
    Counters::add(counters_.messages_dropped);
    unpersist_delivery(session, delivery);
    if (delivery.message->retain && backlog.dropped_retained.size() < limits.max_retained_messages) {
      std::string topic(delivery.message->topic());
      if (!RetainedStore::clears(*delivery.message)) delivery.message = nullptr;
      backlog.dropped_retained.insert_or_assign(std::move(topic), std::move(delivery));
    }
    return;
  }
  if (!delivery.stored) store_delivery_for(*session.subscriber, delivery);
  backlog.live_bytes += size;
  ++backlog.live;
  backlog.entries.push_back({RetainedBacklog::Kind::Live, std::move(delivery)});
}

bool WorkerCore::refill_from_backlog(Session& session, ClientConnection& connection) {
  auto it = retained_backlogs_.find(session.id());
  if (it == retained_backlogs_.end()) return false;
  const Limits& limits = engine_.limits();
  RetainedBacklog& backlog = it->second;
  // Half the queue's bounds, and output below what would mark the subscriber Congested (a
  // QoS 0 message taken here goes to the socket at once); one message always fits an empty
  // queue and an idle socket, whatever the limits.
  std::uint64_t output_room = limits.max_pending_output_bytes / 2;
  if (limits.output_high_water_bytes != 0) output_room = std::min(output_room, limits.output_high_water_bytes / 2);
  // Only what the inflight window can take next waits in the queue: an UNSUBSCRIBE cancels the
  // rest, while what is queued already still goes.
  const std::size_t queue_room =
      std::max<std::size_t>(1, std::min<std::size_t>(limits.max_queued_messages / 2, send_window(connection)));
  bool moved = false;
  for (;;) {
    if (backlog.entries.empty()) requeue_dropped_retained(session, backlog);
    if (backlog.entries.empty() || session.queue.size() >= queue_room ||
        session.queued_bytes > limits.max_queued_bytes / 2 ||
        (connection.pending_bytes() != 0 && connection.pending_bytes() >= output_room))
      break;
    RetainedBacklog::Entry& front = backlog.entries.front();
    const bool live = front.kind == RetainedBacklog::Kind::Live;
    Delivery delivery;
    if (front.kind != RetainedBacklog::Kind::Snapshot) {
      delivery = std::move(front.delivery);
      backlog.entries.pop_front();
    } else {
      // A snapshot cancelled (its subscription is gone, or was made anew with a snapshot of
      // its own) has no messages left and no walk.
      RetainedBacklog::Snapshot& snapshot = backlog.snapshots[front.snapshot];
      if (snapshot.messages.empty()) {
        if (snapshot.walk) break;  // its walk goes on at the end of the turn; the rest waits
        backlog.entries.pop_front();
        continue;
      }
      --backlog.snapshot_waiting;
      delivery.message = std::move(snapshot.messages.front());
      snapshot.messages.pop_front();
      delivery.qos = std::min(snapshot.options.qos, delivery.message->qos);
      delivery.retain = true;  // [MQTT-3.3.1-8]
      delivery.shared_tag = snapshot.copy_tag;
      if (const std::uint32_t id = snapshot.options.subscription_id) delivery.subscription_ids.push_back(id);
    }
    if (live) {
      --backlog.live;
      backlog.live_bytes -= queued_size(delivery);
    } else if (!engine_.retained().holds(*delivery.message)) {
      // Replaced or cleared since the subscribe: its successor is behind it, or was dropped
      // and its topic's current message follows the backlog.
      continue;
    } else {
      store_delivery_for(*session.subscriber, delivery);
    }
    session.queued_bytes += queued_size(delivery);
    session.queue.push_back(std::move(delivery), engine_.limits().max_queued_bytes);
    moved = true;
  }
  if (backlog.entries.empty()) retained_backlogs_.erase(it);
  return moved;
}

void WorkerCore::unsubscribed(const Session& session, const std::string& filter) {
  if (retained_backlogs_.empty()) return;
  if (auto it = retained_backlogs_.find(session.id()); it != retained_backlogs_.end())
    it->second.cancel_snapshots(filter);
}

void WorkerCore::requeue_dropped_retained(const Session& session, RetainedBacklog& backlog) {
  const std::uint64_t now = engine_.now_ms();
  for (auto& [topic, dropped] : backlog.dropped_retained) {
    MessagePtr current = engine_.retained().current(topic, now);
    if (!current) {
      // Cleared since: the clear itself goes, as it would have, so a value sent before it
      // does not stand. Expired since: nothing.
      if (dropped.message) {
        dropped.stored = false;
        backlog.entries.push_back({RetainedBacklog::Kind::Requeued, std::move(dropped)});
      }
      continue;
    }
    Delivery delivery;
    int granted = -1;  // as routing would give it: the best matching subscription's QoS
    for (const auto& [filter, options] : session.subscriptions) {
      if (protocol::is_shared_filter(filter) || !protocol::topic_matches(filter, topic)) continue;
      granted = std::max<int>(granted, options.qos);
      if (options.subscription_id) delivery.subscription_ids.push_back(options.subscription_id);
    }
    if (granted < 0) continue;  // unsubscribed meanwhile
    delivery.qos = static_cast<std::uint8_t>(std::min<int>(granted, current->qos));
    delivery.retain = true;
    delivery.shared_tag = engine_.next_retained_copy_tag();
    delivery.message = std::move(current);
    backlog.entries.push_back({RetainedBacklog::Kind::Requeued, std::move(delivery)});
  }
  backlog.dropped_retained.clear();
}

bool WorkerCore::feed_retained_backlogs() {
  bool walking = false;
  backlog_ids_.clear();
  for (const auto& entry : retained_backlogs_) backlog_ids_.push_back(entry.first);
  for (const std::uint64_t id : backlog_ids_) {
    Session* session = sessions_by_id_.find(id);
    if (session == nullptr) {
      retained_backlogs_.erase(id);
      continue;
    }
    walking = advance_walks(retained_backlogs_.at(id)) || walking;
    pump(*session);  // takes more once the client took what it had, or the walk met more
  }
  return walking;
}

void WorkerCore::send_queued(Session& session, ClientConnection& connection, std::size_t window) {
  std::uint64_t now = 0;  // read only for a message that can expire: the clock costs
  const std::uint64_t output_bound = queued_output_bound();
  while (!session.queue.empty()) {
    Delivery& front = session.queue.front();
    if (front.qos > 0 && session.inflight.size() >= window) break;
    // A client that does not take its output gets no more until it does: its messages wait
    // here, within the queue's bounds, not in its output, where a stuck vehicle's window of
    // 16 MiB files would pin a GiB. end_of_turn pumps it again as the output drains. (Not at
    // max_pending_output_bytes: a reader keeping up with 64 KiB messages has more unsent
    // than that, and stopping it there costs it throughput.)
    if (connection.pending_bytes() > output_bound) {
      output_waiters_.insert(session.id());
      break;
    }
    // A QoS 0 message does not overtake one waiting for the store (send_inflight_when_durable
    // pumps again once that went out): the session's order holds across QoS levels.
    if (front.qos == 0 && waiting_for_store(session)) break;
    Delivery delivery = std::move(front);
    session.queue.pop_front();
    session.queued_bytes -= queued_size(delivery);
    if (delivery.message->expires_at_ms != 0 && now == 0) now = engine_.now_ms();
    if (discarded(session, delivery, now)) continue;
    if (delivery.qos == 0) {
      connection.send_publish(delivery, 0, false);
      continue;
    }
    std::uint16_t id = session.next_packet_id;
    while (session.inflight.contains(id)) id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
    session.next_packet_id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
    // A stored QoS 2 message waits for its state to be on disk; whatever follows it waits
    // behind it (the after-commit callbacks run in order), so the session's order holds.
    // Only a persistent session has stored deliveries that can wait: the others skip the
    // walk over the window, per message.
    const bool wait_for_commit =
        engine_.durable_acks() &&
        ((delivery.qos == 2 && delivery.stored) ||
         ((delivery.stored || session.subscriber->persistent.load(std::memory_order_relaxed)) &&
          std::any_of(session.inflight.begin(), session.inflight.end(),
                      [](const auto& entry) { return !entry.second.sent; })));
    if (wait_for_commit) {
      const auto state = delivery.qos == 1 ? InflightMessage::State::AwaitPuback
                                           : InflightMessage::State::AwaitPubrec;
      persist_delivery(session, delivery,
                       delivery.qos == 1 ? DeliveryState::AwaitPuback : DeliveryState::AwaitPubrec, id);
      session.inflight.emplace(id, InflightMessage{std::move(delivery), state, false});
      send_inflight_when_durable(session, id);
      continue;
    }
    // Too large for the client: dropped as if delivered [MQTT-3.1.2-25].
    if (!connection.send_publish(delivery, id, false)) {
      unpersist_delivery(session, delivery);
      continue;
    }
    auto state = delivery.qos == 1 ? InflightMessage::State::AwaitPuback
                                   : InflightMessage::State::AwaitPubrec;
    persist_delivery(session, delivery,
                     delivery.qos == 1 ? DeliveryState::AwaitPuback : DeliveryState::AwaitPubrec, id);
    session.inflight.emplace(id, InflightMessage{std::move(delivery), state});
  }
}

void WorkerCore::transmit_inflight(Session& session, std::uint16_t packet_id) {
  auto it = session.inflight.find(packet_id);
  if (it == session.inflight.end() || it->second.sent) return;
  InflightMessage& inflight = it->second;
  const bool pubrel = inflight.state == InflightMessage::State::AwaitPubcomp;
  ClientConnection* connection = session.connection;
  if (!connection || !connection->connected()) {
    inflight.held = true;  // on disk now, the client gone: resent when it is back
    if (!pubrel) inflight.resend_as_dup = false;
    return;
  }
  // A held PUBLISH waits for room (send_held); a PUBREL never does.
  if (inflight.held && !pubrel) return;
  if (!pubrel) {
    // A takeover can bring a smaller Receive Maximum than the one this message was let into
    // the window under [MQTT-3.3.4-9]: then it waits for room as a held one does.
    const auto sent = static_cast<std::size_t>(std::count_if(
        session.inflight.begin(), session.inflight.end(),
        [](const auto& entry) { return entry.second.sent; }));
    if (sent >= send_window(*connection)) {
      inflight.held = true;
      inflight.resend_as_dup = false;  // it never went out
      session.resend_held = true;
      return;
    }
  }
  inflight.sent = true;
  inflight.resend_as_dup = true;
  if (pubrel) {
    connection->send_pubrel(packet_id);
  } else if (!connection->send_publish(inflight.delivery, packet_id, false)) {
    unpersist_delivery(session, inflight.delivery);  // too large for the client: dropped as if delivered
    session.inflight.erase(it);
  }
}

void WorkerCore::send_inflight_when_durable(Session& session, std::uint16_t packet_id) {
  auto it = session.inflight.find(packet_id);
  if (it == session.inflight.end()) return;
  const bool others_waiting = std::any_of(
      session.inflight.begin(), session.inflight.end(),
      [packet_id](const auto& entry) {
        return entry.first != packet_id && !entry.second.sent && !entry.second.held;
      });
  if (!engine_.durable_acks() || (!it->second.delivery.stored && !others_waiting)) {
    it->second.sent = false;
    transmit_inflight(session, packet_id);
    return;
  }
  it->second.sent = false;
  after_commit([this, session_id = session.id(), packet_id](const Status& status) {
    if (!status.is_ok()) warn_store_failure(status, "the message is sent anyway");
    if (Session* found = sessions_by_id_.find(session_id)) {
      transmit_inflight(*found, packet_id);
      pump(*found);  // what queued behind it (a QoS 0 message waits: pump)
    }
  });
}

void WorkerCore::redistribute_shared(Session& session) {
  auto hand_off = [&](Delivery& delivery) -> bool {
    const std::string_view topic = delivery.message->topic();
    for (const auto& [filter, options] : session.subscriptions) {
      auto shared = protocol::parse_shared_filter(filter);
      if (!shared || !protocol::topic_matches(shared->filter, topic)) continue;
      if (delivery.shared_tag != 0 &&
          delivery.shared_tag != shared_subscription_tag(shared->group, shared->filter))
        continue;  // another of the session's groups: it has its own copy
      Match match;
      if (!engine_.index().pick_shared(index_, shared->group, shared->filter,
                                       session.subscriber->key, match))
        continue;
      unpersist_delivery(session, delivery);
      Delivery moved = std::move(delivery);
      moved.shared_tag = shared_subscription_tag(shared->group, shared->filter);
      hand_to_member(std::move(moved), match);
      return true;
    }
    // The session left the group (UNSUBSCRIBE) with the group's messages still on their way to
    // it: the group is found by the message's tag among the topic's shared matches. Not to this
    // session, which may still be a member of it (when no other member was picked above).
    if (delivery.shared_tag == 0) return false;
    std::optional<Match> member = pick_group_member(delivery, &session.subscriber->key);
    if (!member) return false;  // no other member is left: the message has nowhere to go
    unpersist_delivery(session, delivery);
    hand_to_member(std::move(delivery), *member);
    return true;
  };
  for (auto it = session.inflight.begin(); it != session.inflight.end();) {
    auto& m = it->second;
    // A QoS 2 message already sent must finish with this session, never another member
    // [MQTT-4.8.2-5]; a QoS 1 message may go elsewhere.
    if (m.delivery.shared && m.state == InflightMessage::State::AwaitPuback && hand_off(m.delivery)) {
      it = session.inflight.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = session.queue.begin(); it != session.queue.end();) {
    if (it->shared) {
      std::uint64_t size = queued_size(*it);
      if (hand_off(*it)) {
        session.queued_bytes -= size;
        it = session.queue.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void WorkerCore::tick(std::uint64_t now_ms) {
  connections_.for_each([now_ms](ClientConnection& connection) { connection.tick(now_ms); });
  if (!unsaved_sessions_.empty()) save_unsaved_sessions();
  expire_sessions(now_ms);
  if (now_ms - last_queue_purge_ms_ >= kExpiryPurgeIntervalMs) {
    last_queue_purge_ms_ = now_ms;
    purge_expired_queued(now_ms);
  }
  report_drops(now_ms);
  report_refused_connects(now_ms);
  std::erase_if(hold_cooldown_, [now_ms](const auto& entry) { return entry.second <= now_ms; });
  if (index_ == 0 && engine_.store() && now_ms - last_alive_mark_ms_ >= kAliveMarkIntervalMs) {
    last_alive_mark_ms_ = now_ms;
    batch_.mark_alive(now_ms);
  }
  if (index_ == 0 && now_ms - last_retained_purge_ms_ >= kExpiryPurgeIntervalMs) {
    last_retained_purge_ms_ = now_ms;
    Counters::add(counters_.messages_expired, engine_.retained().purge_expired(now_ms));
    // Their records go too (a vehicle's rotating alert topics must not fill the disk); each
    // delete spares a newer message retained meanwhile from another worker's batch.
    for (auto& expired : engine_.retained().take_expired()) {
      if (engine_.store()) batch_.delete_retained(std::move(expired.topic), expired.id);
    }
  }
}

void WorkerCore::note_refused_connect(std::string_view peer, std::string_view why) {
  ++refused_connects_;
  last_refused_connect_ = fmt::format("{}: {}", peer, why);
}

void WorkerCore::report_refused_connects(std::uint64_t now_ms) {
  // A vehicle refused in the field must leave a trace at the default level, without a storm
  // of bad clients filling the log: the first at once (next tick), then a count per interval.
  if (refused_connects_ == 0 || !refusal_report_.allow(now_ms)) return;
  log::info("worker {}: {} CONNECT(s) refused since the last report; the last from {}", index_,
            refused_connects_, last_refused_connect_);
  refused_connects_ = 0;
}

void WorkerCore::report_drops(std::uint64_t now_ms, bool final) {
  // Every drop is counted (messages_dropped); an operator without metrics sees them in the log.
  const std::uint64_t dropped = counters_.messages_dropped.load(std::memory_order_relaxed);
  if (dropped == drops_reported_ || !(final || drop_report_.allow(now_ms))) return;
  log::warn("worker {}: {} messages dropped since the last report: full session queues "
            "(limits.max_queued_messages, max_queued_bytes), QoS 0 for readers that do not keep "
            "up (limits.max_pending_output_bytes), or packets above a client's maximum size",
            index_, dropped - drops_reported_);
  drops_reported_ = dropped;
}

void WorkerCore::expire_sessions(std::uint64_t now_ms) {
  std::vector<Session*> due;
  for (Session* session : offline_timed_) {
    bool will_due = session->will && session->will->publish_at_ms <= now_ms;
    bool expired = session->expires_at_ms != 0 && session->expires_at_ms <= now_ms;
    if (will_due || expired) due.push_back(session);
  }
  for (Session* session : due) {
    // [MQTT-3.1.2-8] the will goes out when its delay ends or the session ends, first of both.
    if (session->will) {
      publish_will(session->client_id(), session->will->will);
      session->will.reset();
    }
    if (session->expires_at_ms != 0 && session->expires_at_ms <= now_ms) {
      destroy_session(*session);
      continue;
    }
    if (session->expires_at_ms == 0) offline_timed_.erase(session);
    persist_session(*session);  // without its will: a restart must not publish it again
  }
}

bool WorkerCore::will_skips_delay(const Session& session) const {
  // With a store, a stop is like a crash for a delayed will: it waits in the session's record
  // (restore_session schedules it), and a client back within the delay cancels it.
  return session.expiry_interval == 0 || (stopping_ && !engine_.store());
}

void WorkerCore::publish_stop_wills() {
  stopping_ = true;
  // A connected session's will goes out as if its connection had already closed; one waiting
  // for its delay after an earlier disconnect only if nothing outlives the stop.
  auto publish_if_due = [this](Session& session, bool connected) {
    if (!session.will) return;
    const bool undelayed = session.will->will.properties.will_delay_interval.value_or(0) == 0;
    if ((connected && undelayed) || will_skips_delay(session)) {
      publish_will(session.client_id(), session.will->will);
      session.will.reset();
    }
  };
  connections_.for_each([&](ClientConnection& connection) {
    if (connection.connected() && connection.session()) publish_if_due(*connection.session(), true);
  });
  for (Session* session : std::vector<Session*>(offline_timed_.begin(), offline_timed_.end()))
    publish_if_due(*session, false);
}

void WorkerCore::drain() {
  // Wills come before the DISCONNECTs; the broker publishes them on every worker first
  // (Broker::stop), and this catches a client that connected since.
  publish_stop_wills();
  draining_ = true;
  connections_.for_each([](ClientConnection& connection) {
    connection.disconnect(ReasonCode::ServerShuttingDown, "server shutting down");
  });
}

// --- persistence ---

void WorkerCore::persist_session(Session& session) {
  if (!engine_.store()) return;
  if (session.expiry_interval == 0) {
    if (session.subscriber->persistent.exchange(false)) {
      batch_.delete_session(session.client_id());  // its deliveries go with it
      forget_stored(session);
    }
    return;
  }
  session.subscriber->persistent.store(true, std::memory_order_relaxed);
  batch_.put_session(to_record(session));
  batch_sessions_.push_back(session.id());
}

void WorkerCore::forget_stored(Session& session) {
  // Their records are gone: a later state change must not write them again, nor wait for the
  // store (live messages to the session do not, and would overtake them).
  for (Delivery& delivery : session.queue) delivery.stored = false;
  for (auto& [packet_id, inflight] : session.inflight) inflight.delivery.stored = false;
  if (auto it = retained_backlogs_.find(session.id()); it != retained_backlogs_.end()) {
    for (auto& entry : it->second.entries) entry.delivery.stored = false;
  }
}

void WorkerCore::persist_delivery(Session& session, const Delivery& delivery, DeliveryState state,
                                  std::uint16_t packet_id) {
  if (!delivery.stored) return;
  batch_.put_delivery(to_record(session.client_id(), delivery, state, packet_id));
}

void WorkerCore::unpersist_delivery(Session& session, const Delivery& delivery) {
  unpersist_delivery(session.client_id(), delivery);
}

void WorkerCore::unpersist_delivery(const std::string& client_id, const Delivery& delivery) {
  if (!delivery.stored || !delivery.message) return;
  batch_.delete_delivery(client_id, delivery.message->id, delivery.shared_tag);
}

void WorkerCore::store_delivery_for(const Subscriber& target, Delivery& delivery) {
  if (!engine_.store() || delivery.qos == 0 || delivery.message->durability == Durability::Memory ||
      !target.persistent.load(std::memory_order_relaxed))
    return;
  const Message& message = *delivery.message;
  if (!message.persisted.exchange(true, std::memory_order_acq_rel)) batch_.put_message(to_record(message));
  batch_.put_delivery(to_record(target.client_id, delivery, DeliveryState::Queued, 0));
  delivery.stored = true;
}

void WorkerCore::warn_store_failure(const Status& status, std::string_view consequence) {
  // Once a second at most: on a full disk every message would say it. Whatever the store is
  // (a plug-in may not log its own errors), a failure the broker waits on is said here.
  ++store_failures_unlogged_;
  if (!store_warning_.allow(engine_.now_ms())) return;
  log::warn("worker {}: store write failed ({}); {} ({} failure(s) since the last report)", index_,
            status.to_string(), consequence, store_failures_unlogged_);
  store_failures_unlogged_ = 0;
}

void WorkerCore::retain(const MessagePtr& message) {
  auto result = engine_.retained().set(message, engine_.now_ms());
  if (result == RetainedStore::SetResult::Full && retained_warning_.allow(engine_.now_ms())) {
    // The message still reaches its subscribers; only its retained copy is not kept. Said at
    // most once a second: a flood of new topics would otherwise flood the log.
    log::warn("retained store full (limits.max_retained_messages {}, limits.max_retained_bytes {}): "
              "\"{}\" ({} bytes) not retained",
              engine_.limits().max_retained_messages, engine_.limits().max_retained_bytes,
              message->topic(), message->footprint());
  }
  if (!engine_.store() || message->durability == Durability::Memory) return;
  if (result == RetainedStore::SetResult::Stored || result == RetainedStore::SetResult::Replaced) {
    batch_.put_retained(to_record(*message));
  } else if (result == RetainedStore::SetResult::Cleared ||
             (result == RetainedStore::SetResult::NothingToClear && engine_.unserved_retained())) {
    // Nothing to clear in memory may still be a record recovery left unserved (past a lowered
    // limit): it must not come back once the limit is raised.
    batch_.delete_retained(std::string(message->topic()));
  }
}

void WorkerCore::after_commit(std::function<void(const Status&)> callback) {
  after_commit_.push_back(std::move(callback));
}

void WorkerCore::flush_writes() {
  Store* store = engine_.store();
  if (!store || (batch_.empty() && after_commit_.empty())) return;
  WriteBatch batch = std::move(batch_);
  batch_.clear();
  // What the completion needs: the callbacks waiting for this commit, and the sessions whose
  // records it holds (written again by tick if it fails, not forgotten).
  using Callbacks = std::vector<std::function<void(const Status&)>>;
  std::shared_ptr<Callbacks> callbacks;
  if (!after_commit_.empty()) callbacks = std::make_shared<Callbacks>(std::move(after_commit_));
  after_commit_.clear();
  std::shared_ptr<std::vector<std::uint64_t>> sessions;
  if (!batch_sessions_.empty()) sessions = std::make_shared<std::vector<std::uint64_t>>(std::move(batch_sessions_));
  batch_sessions_.clear();
  if (!callbacks && !sessions) {
    store->submit(std::move(batch), nullptr);
    return;
  }
  // Completions run on the store's thread; what they touch belongs to this worker. A commit
  // with no callbacks costs a post only when it failed.
  Dispatcher* dispatcher = &engine_.dispatcher();
  store->submit(std::move(batch), [this, dispatcher, callbacks, sessions](const Status& status) {
    if (!callbacks && status) return;
    dispatcher->post(index_, [this, callbacks, sessions, status] {
      if (!status) warn_store_failure(status, "what waited for it is answered with the error");
      if (!status && sessions) unsaved_sessions_.insert(unsaved_sessions_.end(), sessions->begin(), sessions->end());
      if (callbacks) {
        for (auto& callback : *callbacks) callback(status);
      }
    });
  });
}

void WorkerCore::save_unsaved_sessions() {
  std::vector<std::uint64_t> ids = std::move(unsaved_sessions_);
  unsaved_sessions_.clear();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (std::uint64_t id : ids) {
    Session* session = sessions_by_id_.find(id);
    if (session && session->expiry_interval != 0) persist_session(*session);
  }
}

bool WorkerCore::connection_alive(const ClientConnection* connection, std::uint64_t serial) const {
  return connections_.find(serial) == connection;
}

void WorkerCore::restore_session(StoredSession&& record, std::uint64_t now_ms, std::uint64_t gone_ms) {
  Session& session = create_session(record.client_id);
  session.version = static_cast<protocol::ProtocolVersion>(record.protocol_version);
  session.expiry_interval = record.expiry_interval;
  // Connected when written (0): the client went away with the broker. Never later than a full
  // interval from now: a later deadline was written before the wall clock went back.
  const std::uint64_t latest_expiry = now_ms + std::uint64_t{session.expiry_interval} * 1000;
  session.expires_at_ms = record.expires_at_ms;
  if (session.expiry_interval != kNever) {
    if (session.expires_at_ms == 0) session.expires_at_ms = gone_ms + std::uint64_t{session.expiry_interval} * 1000;
    session.expires_at_ms = std::min(session.expires_at_ms, latest_expiry);
  }
  for (auto& sub : record.subscriptions) {
    SubscriptionOptions o{sub.qos, sub.no_local, sub.retain_as_published, sub.retain_handling,
                          sub.subscription_id};
    engine_.index().subscribe(session.subscriber, sub.filter, o);
    session.subscriptions.emplace(std::move(sub.filter), o);
  }
  if (record.will) {
    StoredWill& w = *record.will;
    protocol::Will will;
    will.topic = std::move(w.message.topic);
    will.payload = protocol::Payload::copy_of(w.message.payload);
    will.qos = w.message.qos;
    will.retain = w.message.retain;
    will.properties.message_expiry_interval = w.message.message_expiry_interval;
    will.properties.payload_format_indicator = w.message.payload_format_indicator;
    will.properties.content_type = std::move(w.message.content_type);
    will.properties.response_topic = std::move(w.message.response_topic);
    will.properties.correlation_data = std::move(w.message.correlation_data);
    will.properties.user_properties = std::move(w.message.user_properties);
    if (w.delay_interval) will.properties.will_delay_interval = w.delay_interval;
    const std::uint64_t delay_ms = std::uint64_t{w.delay_interval} * 1000;
    const std::uint64_t at = std::min(w.publish_at_ms != 0 ? w.publish_at_ms : gone_ms + delay_ms, now_ms + delay_ms);
    session.will = std::make_unique<PendingWill>(PendingWill{std::move(will), at});
  }
  for (std::uint16_t id : record.inbound_qos2) session.inbound_qos2.insert(id);
  session.subscriber->persistent.store(true);
  if (session.expires_at_ms != 0 || session.will) offline_timed_.insert(&session);
}

bool WorkerCore::restore_delivery(StoredDelivery&& record, const MessagePtr& message) {
  Session* session = find_session(record.client_id);
  if (!session) {
    forget_stored_delivery(record);
    return false;
  }
  Delivery delivery;
  delivery.message = message;
  delivery.qos = record.qos;
  delivery.retain = record.retain;
  delivery.shared = record.shared;
  delivery.shared_tag = record.shared_tag;
  delivery.subscription_ids = std::move(record.subscription_ids);
  delivery.stored = true;
  if (record.state == DeliveryState::Queued || record.packet_id == 0 ||
      session->inflight.contains(record.packet_id)) {
    session->queued_bytes += queued_size(delivery);
    session->queue.push_back(std::move(delivery), engine_.limits().max_queued_bytes);
    return true;
  }
  auto state = record.state == DeliveryState::AwaitPuback   ? InflightMessage::State::AwaitPuback
               : record.state == DeliveryState::AwaitPubrec ? InflightMessage::State::AwaitPubrec
                                                            : InflightMessage::State::AwaitPubcomp;
  session->inflight.emplace(record.packet_id, InflightMessage{std::move(delivery), state});
  session->next_packet_id = static_cast<std::uint16_t>(record.packet_id == 65535 ? 1 : record.packet_id + 1);
  return true;
}

void WorkerCore::forget_stored_delivery(const StoredDelivery& record) {
  batch_.delete_delivery(record.client_id, record.message_id, record.shared_tag);
}

void WorkerCore::forget_stored_retained(std::string topic) { batch_.delete_retained(std::move(topic)); }

void WorkerCore::purge_expired_queued(std::uint64_t now_ms) {
  sessions_by_id_.for_each([&](Session& session) {
    if (session.connection) return;  // a connected session drops them as it sends
    for (auto it = session.queue.begin(); it != session.queue.end();) {
      if (!is_expired(*it->message, now_ms)) {
        ++it;
        continue;
      }
      release_queued(session, *it);
      Counters::add(counters_.messages_expired);
      it = session.queue.erase(it);
    }
  });
}

}  // namespace broker::core
