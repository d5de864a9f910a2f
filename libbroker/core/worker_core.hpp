#pragma once
// WorkerCore: the MQTT semantics one worker thread owns: its connections' handlers, the
// sessions whose client id hashes to it, routing of the publishes its clients send, and the
// per-loop-turn batches of deliveries to other workers. The transport's worker drives it:
// open() per connection, hand_off() after each loop turn's I/O and end_of_turn() after its
// writes, tick() periodically, drain() at shutdown.
//
// Thread safety: every method runs on the owning worker's thread.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/store.hpp"
#include "core/byte_budget.hpp"
#include "core/counters.hpp"
#include "core/delivery.hpp"
#include "core/flow_control.hpp"
#include "core/link.hpp"
#include "core/retained_store.hpp"
#include "core/session.hpp"
#include "core/slot_map.hpp"
#include "util/log_throttle.hpp"

namespace broker::core {

class Engine;
class ClientConnection;

// How often worker 0 writes WriteBatch::MarkAlive: after a crash, a session that was connected
// counts as gone at most this much later than the crash.
inline constexpr std::uint64_t kAliveMarkIntervalMs = 1000;

class WorkerCore {
 public:
  // worker_count: how many workers the engine has (batches go to each).
  WorkerCore(Engine& engine, unsigned index, unsigned worker_count);
  ~WorkerCore();
  WorkerCore(const WorkerCore&) = delete;
  WorkerCore& operator=(const WorkerCore&) = delete;

  unsigned index() const noexcept { return index_; }
  Engine& engine() noexcept { return engine_; }
  Counters& counters() noexcept { return counters_; }

  // --- driven by the transport ---
  std::unique_ptr<ConnectionHandler> open(Link& link);
  // Submits the turn's store writes and posts its cross-worker deliveries: before the turn's
  // own writes, so other workers start on them while this one is in the kernel.
  void hand_off();
  // Back-pressure bookkeeping and retained walks, then hand_off() for whatever that released.
  // True while a retained walk is not through: the transport then polls without blocking.
  bool end_of_turn();
  void tick(std::uint64_t now_ms);
  // Shutdown, step 1 (before any client is disconnected, so that every one still connected can
  // receive them): publishes the wills the stop triggers [MQTT-3.1.2-8], those of connected
  // sessions and, without a store, the delayed ones of offline sessions. Idempotent.
  void publish_stop_wills();
  // Shutdown, step 2: publish_stop_wills() for late arrivals, DISCONNECT 0x8B to 5.0 clients,
  // every link closed.
  void drain();

  // --- sessions (used by ClientConnection) ---
  Session* find_session(std::string_view client_id);
  Session& create_session(const std::string& client_id);
  // Removes the session's subscriptions from the index and forgets it; hands its unacknowledged
  // shared-subscription messages to other group members.
  void destroy_session(Session& session);
  // The session got a connection: it leaves the offline set (no expiry, no pending will).
  void session_online(Session& session);
  // The session lost its connection: its will is published now or scheduled (will delay),
  // shared-subscription messages in flight go to other members, and the session expires now
  // (expiry 0) or later.
  void session_offline(Session& session, bool will_wanted);
  // A client id that hashes to this worker, for clients that sent an empty one.
  std::string assign_client_id();

  // --- messages ---
  // Takes a new message in: gives it its id, applies the TTL rules when it has no expiry,
  // appends it to the message log when a persisted filter matches, keeps it when retained,
  // and routes it. `publisher` as for route().
  struct Published {
    std::size_t receivers;  // sessions it went to
    // Its acknowledgement waits for the store's commit: a Durable message, or one appended to
    // the message log (persisted_filters promise the record before the PUBACK, whatever the
    // topic's durability).
    bool ack_after_commit;
    MessagePtr message;  // as routed: refused if its commit fails
  };
  Published publish(MessageRef&& message, const Session* publisher);
  // Matches `message` once and delivers it to every subscriber, here or on other workers.
  // `publisher` (may be null) is used for No Local. Returns the number of receiving sessions.
  std::size_t route(const MessagePtr& message, const Session* publisher);
  // Queues `delivery` for `session` (bounded) and sends what the window allows.
  void deliver(Session& session, Delivery&& delivery);
  // A delivery that must not go out any more: its message expired at `now_ms` (0 when it
  // cannot expire) [MQTT-3.3.2-5] or was refused to its publisher. Counted and taken out of
  // the store; true when so.
  bool discarded(Session& session, const Delivery& delivery, std::uint64_t now_ms);
  // Sends queued messages while the session's inflight window has room; first the
  // unacknowledged PUBLISH packets held back at reconnect (resume_inflight), then, as the
  // queue and the client's unsent output leave room, its retained backlog (queue_retained).
  void pump(Session& session);
  // Sends, in order [MQTT-3.3.1-9], the retained messages a new subscription matches. The
  // store is walked a bounded number of trie nodes a turn (RetainedStore::Walk), so that a
  // wildcard over a million retained topics does not hold the worker; what the walk meets
  // waits in a backlog that feeds the session's queue at the pace the client takes them, so
  // that neither the queue's bounds (meant for live traffic) drop any nor the broker holds
  // them all as unsent output; a message replaced meanwhile is skipped.
  // `filter`, `options`: the subscription's (made already), which give each its QoS and
  // identifier. Those still waiting from an earlier SUBSCRIBE to the same filter are not
  // sent: these replace them [MQTT-3.8.4-3].
  void queue_retained(Session& session, const std::string& filter, const SubscriptionOptions& options);
  // A session resumed on a new connection [MQTT-4.4.0-1]: resends its unacknowledged PUBREL
  // packets now and holds its unacknowledged PUBLISH packets, which pump() resends (DUP, in
  // order) as the client's Receive Maximum allows [MQTT-3.3.4-9]: it may be lower than the
  // last connection's.
  void resume_inflight(Session& session);
  // Sends the packet the inflight entry `packet_id` is waiting to send (PUBLISH or PUBREL)
  // now, or, for a stored QoS 2 flow under Durability::Durable, once its state is on disk:
  // exactly once must hold across a crash, so the client never sees a packet id or a PUBREL
  // the broker could forget.
  void send_inflight_when_durable(Session& session, std::uint16_t packet_id);
  // The store has it: sends the PUBLISH (room permitting) or PUBREL, or holds it for later.
  void transmit_inflight(Session& session, std::uint16_t packet_id);
  // Moves a session's unacknowledged shared-subscription messages to other group members.
  void redistribute_shared(Session& session);
  // Delivers to this worker's session `session_id`. If it is gone (it left while the delivery
  // was on its way here), a shared-subscription message goes back to its group instead, and
  // the record stored for it (`stored_for` is then its Subscriber) is deleted.
  void deliver_to(std::uint64_t session_id, Delivery&& delivery, const SubscriberPtr& stored_for);
  void reroute_shared(Delivery&& delivery);
  // A member of `delivery`'s shared group (any group of its topic if its tag is 0), never
  // `except`; none when the group has no such member left.
  std::optional<Match> pick_group_member(const Delivery& delivery, const SubscriberKey* except);
  // Sends a shared message on to group member `member` with its subscription's QoS and
  // identifier, stored for it if its session needs that.
  void hand_to_member(Delivery&& delivery, const Match& member);
  // Publishes a will as its client's last message.
  void publish_will(const std::string& client_id, const protocol::Will& will);
  // Whether `session`'s will goes out at its disconnect despite a delay: the session ends with
  // the connection, or the broker is stopping and nothing outlives the process.
  bool will_skips_delay(const Session& session) const;
  // Logs a failed store commit this worker waited on, at most once a second with a count.
  void warn_store_failure(const Status& status, std::string_view consequence);
  // A CONNECT this worker refused: counted, and logged with the latest reason by tick.
  void note_refused_connect(std::string_view peer, std::string_view why);

  // Bytes held by connections that have not completed CONNECT (64 MiB; past it only small
  // CONNECTs go on), and for packets whose bytes have not all come (128 MiB).
  ByteBudget& connecting_bytes() noexcept { return connecting_bytes_; }
  ByteBudget& unfinished_bytes() noexcept { return unfinished_bytes_; }

  // Returns the connection's serial (see ClientConnection::serial()).
  std::uint64_t connection_opened(ClientConnection& connection);
  void connection_closed(ClientConnection& connection);

  // --- publisher back-pressure (core/flow_control.hpp) ---
  // Whether the last publish() from a client found a receiver Congested or a target inbox full.
  bool publisher_blocked() const noexcept { return !route_blockers_.empty(); }
  // Holds `connection` (stops reading it) until what blocked its last publish drains, or
  // Limits::max_publisher_pause_ms passed. Returns false when the blockers already drained.
  bool hold_publisher(ClientConnection& connection);
  // Bytes `connection` read but did not handle before it was held; handled when it goes on.
  void stash_input(ClientConnection& connection, std::string_view bytes);
  // Bytes a client sent after a CONNECT whose CONNACK waits for the store, by connection
  // serial (ClientConnection::handle_connect): handled once the CONNACK is out. The waiting
  // connection's after-commit callback takes them, whether it is still alive or not.
  void stash_until_connack(std::uint64_t serial, std::string_view bytes) {
    input_until_connack_[serial].append(bytes);
  }
  std::string take_input_until_connack(std::uint64_t serial);
  // Holds `connection` until its own unsent output falls to Limits::output_low_water_bytes:
  // it sends requests (PINGREQ, QoS 1 PUBLISH) and does not read the answers.
  void hold_reader(ClientConnection& connection);

  // --- persistence (no-ops without a store) ---
  // Writes the session's record if it is persistent (session expiry > 0); a session that
  // stopped being persistent loses its record.
  void persist_session(Session& session);
  // The delivery's record for `session` changed state (sent, PUBREC received).
  void persist_delivery(Session& session, const Delivery& delivery, DeliveryState state,
                        std::uint16_t packet_id);
  // The delivery is done (acknowledged, dropped, expired, moved): its record goes.
  void unpersist_delivery(Session& session, const Delivery& delivery);
  void unpersist_delivery(const std::string& client_id, const Delivery& delivery);
  // The session stopped being persistent and its records went with its session record: its
  // deliveries no longer have one.
  void forget_stored(Session& session);
  // A queued delivery leaves `session` for good (dropped, expired): its bytes and its record go.
  void release_queued(Session& session, const Delivery& delivery);
  // Takes the oldest queued delivery out of `session`, released.
  void pop_queued_front(Session& session);
  // The same for the oldest queued delivery that is QoS 0 (if `qos0_only`) and oversize
  // (core::oversize) or not as `of_oversize` says; false if there is none.
  bool pop_oldest(Session& session, bool qos0_only, bool of_oversize);
  // Writes again the session records a failed batch held (see unsaved_sessions_).
  void save_unsaved_sessions();
  // Stores `delivery` (and its message, once) for the persistent session `target` if it needs it.
  void store_delivery_for(const Subscriber& target, Delivery& delivery);
  // Sets or clears a retained message, in memory and in the store.
  void retain(const MessagePtr& message);
  // Runs `callback` on this worker once every write made so far is durable (or failed).
  void after_commit(std::function<void(const Status&)> callback);
  bool has_pending_writes() const noexcept { return !batch_.empty(); }
  // Submits this turn's writes; hand_off() does it, and shutdown once workers stopped.
  void flush_writes();
  // Recovery (before the workers run). A session connected when its record was written counts
  // as gone since `gone_ms`: the broker's last sign of life before it stopped.
  void restore_session(StoredSession&& record, std::uint64_t now_ms, std::uint64_t gone_ms);
  // Ends offline sessions whose expiry passed and publishes wills whose delay passed (each
  // tick, and once after recovery for what came due while the broker was down).
  void expire_sessions(std::uint64_t now_ms);
  // Expired messages queued for offline sessions leave memory and the store now, not when (if
  // ever) their vehicle comes back [MQTT-3.3.2-5].
  void purge_expired_queued(std::uint64_t now_ms);
  bool restore_delivery(StoredDelivery&& record, const MessagePtr& message);
  void forget_stored_delivery(const StoredDelivery& record);
  // Recovery: a retained message that expired while the broker was down leaves the store.
  void forget_stored_retained(std::string topic);
  // Whether `connection` is still open and is the one that had `serial` (late completions).
  bool connection_alive(const ClientConnection* connection, std::uint64_t serial) const;

  // A batch from another worker: (session id, delivery) pairs for sessions living here.
  struct BatchItem {
    std::uint64_t session_id;
    Delivery delivery;
    SubscriberPtr stored_for;  // the receiver, when delivery.stored (see deliver_to)
  };
  void receive_batch(std::vector<BatchItem>&& batch);
  // After an UNSUBSCRIBE removed `filter` from `session`: the retained messages still waiting
  // to be sent for that subscription are not sent. The spec lets them go ("MAY continue to
  // deliver any existing messages buffered", 3.10.4), but a vehicle that unsubscribed from a
  // million retained topics should not be sent the rest of them, tagged with the identifier
  // of a subscription it no longer has. Another subscription's copies are its own.
  void unsubscribed(const Session& session, const std::string& filter);

  std::size_t session_count() const noexcept { return sessions_.size(); }
  // A string to encode one packet into before Link::write copies it (kept: no allocation).
  std::string& scratch() noexcept { return scratch_; }

 private:
  // A session's retained messages matched at subscribe time and not yet queued, then the
  // live messages that came after them (waiting behind, in order).
  struct RetainedBacklog {
    // One SUBSCRIBE's retained messages, as its walk meets them.
    struct Snapshot {
      std::string filter;  // "" once unsubscribed or subscribed again: the rest is not sent
      SubscriptionOptions options;
      // Messages from this id on came after the subscription was made: it receives them live.
      std::uint64_t first_live_id = 0;
      std::uint32_t copy_tag = 0;  // its copies' Delivery::shared_tag (their records' identity)
      std::unique_ptr<RetainedStore::Walk> walk;  // null once through
      std::deque<MessagePtr> messages;            // met, not yet queued
    };
    enum class Kind : std::uint8_t {
      Live,      // routed after the subscribe, not part of the retained snapshot
      // Added by requeue_dropped_retained: matched against the subscriptions of the moment,
      // it belongs to none of the snapshots.
      Requeued,
      Snapshot,  // stands for the messages of snapshots[snapshot]
    };
    struct Entry {
      Kind kind;
      Delivery delivery;           // Live and Requeued entries
      std::uint32_t snapshot = 0;  // Snapshot entries
    };
    std::deque<Entry> entries;
    std::uint64_t live = 0;        // live entries: bounded like a session queue
    std::uint64_t live_bytes = 0;  // their payload bytes
    // Snapshot messages met and not yet queued (advance_walks bounds them).
    std::uint64_t snapshot_waiting = 0;
    // Topics whose live retained message was dropped at that bound. The snapshot entries it
    // replaced are skipped, so once the backlog is through, each topic's current retained
    // message follows (requeue_dropped_retained), or, for a topic cleared since, the dropped
    // clear (kept only then: the others' messages are not held). At most max_retained_messages.
    std::unordered_map<std::string, Delivery> dropped_retained;
    std::vector<Snapshot> snapshots;  // one per SUBSCRIBE since the backlog began
    void cancel_snapshots(const std::string& filter) {
      for (auto& s : snapshots) {
        if (s.filter != filter) continue;
        s.filter.clear();
        s.walk.reset();
        snapshot_waiting -= s.messages.size();
        s.messages = {};
      }
    }
  };
  // Walks the backlog's snapshots on, one after the other in SUBSCRIBE order, while the turn's
  // walk budget lasts and fewer than max_retained_messages wait: past that a walk pauses until
  // the client took some (the waiting ones are all ahead of it), so no SUBSCRIBE loses any
  // however many ask and the backlog stays bounded. True when the budget ran out first.
  bool advance_walks(RetainedBacklog& backlog);
  // Appends to the backlog, as snapshot entries, the current retained messages of its
  // dropped_retained topics that the session's subscriptions still match, or their clears.
  void requeue_dropped_retained(const Session& session, RetainedBacklog& backlog);
  // pump()'s first step: resends held PUBLISH packets, in order, while fewer than `window`
  // are unacknowledged.
  void send_held(Session& session, ClientConnection& connection, std::size_t window);
  // PUBLISH packets that may be unacknowledged on `connection`: our max_inflight and its
  // Receive Maximum.
  std::size_t send_window(const ClientConnection& connection) const;
  // pump()'s steps: the queue while the window has room; the retained backlog into the queue
  // (true when it moved any); every backlog once a turn, as output drains without an event.
  void send_queued(Session& session, ClientConnection& connection, std::size_t window);
  // Once a turn, after the flush: pumps the sessions send_queued left waiting whose output
  // is back within queued_output_bound().
  void pump_output_waiters();
  // Unsent bytes past which send_queued writes nothing more to a client: as many as its queue
  // may hold, and never less than max_pending_output_bytes.
  std::uint64_t queued_output_bound() const noexcept;
  bool refill_from_backlog(Session& session, ClientConnection& connection);
  // Once a turn: walks on and pumps every backlog; true while some walk is not through.
  bool feed_retained_backlogs();
  void wait_behind_backlog(Session& session, RetainedBacklog& backlog, Delivery&& delivery);
  // Some inflight PUBLISH or PUBREL waits for the store before it is sent.
  static bool waiting_for_store(Session& session);
  void send_to(const Match& target, Delivery&& delivery);
  // Back-pressure, subscriber side: marks the session Congested when its output or queue is
  // past the high-water marks (after writing to it).
  void check_output(Session& session, ClientConnection& connection);
  // Congested sessions that drained go back to Open, those held too long become Stuck.
  void update_congested(std::uint64_t now_ms);
  // A session that was Stuck and drained lately: it does not become Congested (holds nobody).
  bool cooling_down(const Session& session) const;
  // Logs how many messages were dropped since the last report (at most every 10 s, unless
  // `final`: the broker stops).
  void report_drops(std::uint64_t now_ms, bool final = false);
  // Logs refused CONNECTs at info: the first at the next tick, then at most every 10 s.
  void report_refused_connects(std::uint64_t now_ms);
  // A Congested subscriber's backlog: its unsent bytes, here and in the kernel, and its queue.
  static std::uint64_t backlog_of(const Session& session, const ClientConnection& connection);
  void set_flow(Session& session, FlowState state);
  // Publisher side: wakes the workers whose bits are in `mask`.
  void wake(std::uint64_t mask);
  void recheck_held(std::uint64_t now_ms);
  // What holds a publisher: Congested receivers and the waiter bits of full worker inboxes.
  struct Blockers {
    std::vector<SubscriberPtr> subscribers;  // Congested receivers
    std::size_t receivers = 0;  // of the PUBLISH that found them: they hold while at least half
    std::uint64_t inboxes = 0;
    bool empty() const noexcept { return subscribers.empty() && inboxes == 0; }
    void clear() noexcept {
      subscribers.clear();
      receivers = 0;
      inboxes = 0;
    }
  };
  // Asks each blocker to wake this worker when it drains, then drops those that already did.
  // Sets took_back_waiter_bits_ when it withdrew the ask from receivers still Congested.
  void drop_drained(Blockers& blockers);
  // Whether route() should look for blockers: back-pressure is on and `publisher` is a client.
  bool holdable(const Session* publisher) const noexcept;
  // Whether the Congested receivers route() found for `publisher`'s PUBLISH (which reached
  // `open` receivers that were Open) hold it.
  bool feeds_mostly_congested(const ClientConnection& publisher, std::size_t open) const;
  // Whether `session` may take kHeldOutputFactor times its bounds: Congested, and holding a
  // publisher or within kHoldGraceMs of becoming Congested.
  bool takes_held_output(const Session& session) const;

  Engine& engine_;
  const unsigned index_;
  Counters counters_;
  // The owning table, found by client id (heterogeneous lookup): a node holds only the
  // pointer, and the id is the session's own, stored once.
  struct ClientIdOf {
    using is_transparent = void;
    static std::string_view of(std::string_view id) noexcept { return id; }
    static std::string_view of(const std::unique_ptr<Session>& s) noexcept { return s->client_id(); }
    template <typename T>
    std::size_t operator()(const T& x) const noexcept {
      return std::hash<std::string_view>{}(of(x));
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const noexcept {
      return of(a) == of(b);
    }
  };
  std::unordered_set<std::unique_ptr<Session>, ClientIdOf, ClientIdOf> sessions_;
  struct SessionId {
    std::uint64_t operator()(const Session& s) const noexcept { return s.id(); }
  };
  struct ConnectionSerial {
    std::uint64_t operator()(const ClientConnection& c) const noexcept;
  };
  SlotMap<Session, SessionId> sessions_by_id_;             // session ids are its ids
  SlotMap<ClientConnection, ConnectionSerial> connections_;  // serials are its ids
  std::unordered_set<Session*> offline_timed_;  // offline with an expiry or a pending will
  std::uint64_t last_retained_purge_ms_ = 0;
  std::uint64_t last_queue_purge_ms_ = 0;
  std::uint64_t last_alive_mark_ms_ = 0;
  log::LogThrottle inbox_warning_{1000};
  log::LogThrottle store_warning_{1000};
  std::uint64_t store_failures_unlogged_ = 0;
  log::LogThrottle retained_warning_{1000};
  ByteBudget connecting_bytes_{64u << 20};
  ByteBudget unfinished_bytes_{128u << 20};
  std::uint64_t drops_reported_ = 0;  // messages_dropped as of the last drop report
  log::LogThrottle drop_report_{10000};
  std::uint64_t refused_connects_ = 0;     // since the last report
  std::string last_refused_connect_;       // "peer: why" of the latest
  log::LogThrottle refusal_report_{10000};
  std::vector<std::vector<BatchItem>> outgoing_;  // per target worker, flushed each turn
  std::vector<Match> match_scratch_;
  std::string scratch_;
  WriteBatch batch_;  // this turn's store writes
  std::vector<std::function<void(const Status&)>> after_commit_;
  // Sessions whose record is in batch_ (persist_session), and those whose record a failed
  // batch held (a full disk or map): tick() writes those again, so a session the client was
  // told about (CONNACK, SUBACK) reaches the store once it has room.
  std::vector<std::uint64_t> batch_sessions_;
  std::vector<std::uint64_t> unsaved_sessions_;
  std::mt19937_64 rng_;
  bool draining_ = false;
  bool stopping_ = false;  // publish_stop_wills() ran: the stop has begun (before draining_)

  // Back-pressure. Subscriber side: sessions Congested or Stuck, with when they last made
  // progress and their backlog then. Publisher side: connections held, and what the current
  // route() found.
  struct HeldPublisher {
    Blockers blockers;
    std::uint64_t since_ms = 0;
    bool own_output = false;  // also until its own output drains (hold_reader)
    std::size_t output_then = 0;  // its unsent bytes at the last look (progress: it reads)
    std::size_t unread_then = 0;  // what it sent that waits unread, at the last look
    std::uint64_t unread_seen_ms = 0;  // that look (a system call: once a second)
    // Read but not yet handled: kept here, not in the connection, so only held ones pay.
    std::string input;
  };
  struct Congestion {
    std::uint64_t since_ms;      // when it became Congested
    std::uint64_t progress_ms;   // when the backlog last fell by output_low_water_bytes
    std::uint64_t backlog_then;  // unsent (here and in the kernel) plus queued bytes then
    std::uint64_t measured_ms;   // when the backlog was last measured
  };
  std::unordered_map<Session*, Congestion> congested_;
  // Sessions that were Stuck: session id -> until when they hold no publisher (update_congested).
  std::unordered_map<std::uint64_t, std::uint64_t> hold_cooldown_;
  std::unordered_map<ClientConnection*, HeldPublisher> held_;
  std::unordered_map<std::uint64_t, std::string> input_until_connack_;  // stash_until_connack
  // Sessions whose queue waits for their client to take its output (send_queued), by id.
  std::unordered_set<std::uint64_t> output_waiters_;
  std::vector<std::uint64_t> waiter_ids_;  // pump_output_waiters' scratch
  bool took_back_waiter_bits_ = false;  // see drop_drained
  std::unordered_map<std::uint64_t, RetainedBacklog> retained_backlogs_;  // by session id (rare)
  std::vector<std::uint64_t> backlog_ids_;  // feed_retained_backlogs' scratch
  // Trie nodes the worker may still walk this turn for retained snapshots: a turn spends at
  // most this on SUBSCRIBEs and as much again on the walks that go on (about a millisecond).
  static constexpr std::size_t kWalkNodesPerTurn = 8192;
  std::size_t walk_budget_ = kWalkNodesPerTurn;
  std::vector<MessagePtr> walked_;  // advance_walks' scratch
  Blockers route_blockers_;  // what the last route() found (read by hold_publisher)
};

}  // namespace broker::core
