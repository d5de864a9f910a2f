#pragma once
// Session: the state MQTT keeps for one client id, connected or not: subscriptions, the
// outbound queue and inflight window, inbound QoS 2 packet ids, the will and expiry.
//
// Outbound flow: deliveries enter `queue`; pump() (in WorkerCore) moves them into `inflight`
// while the window (min of our max_inflight and the client's Receive Maximum) has room, giving
// each a packet id. QoS 0 deliveries to a connected client skip the queue (they are not subject
// to flow control); they are queued while the session is offline, and behind a QoS 0 delivery
// still queued, which they must not overtake. The queue is bounded in messages and bytes.
//
// Thread safety: owned and touched by its home worker only.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "core/delivery.hpp"
#include "core/delivery_queue.hpp"
#include "core/inflight_window.hpp"
#include "core/lazy_ordered.hpp"
#include "core/subscription_map.hpp"
#include "core/topic_index.hpp"
#include "protocol/packet.hpp"

namespace broker::core {

class ClientConnection;

struct InflightMessage {
  enum class State : std::uint8_t { AwaitPuback, AwaitPubrec, AwaitPubcomp };
  Delivery delivery;
  State state = State::AwaitPuback;
  // The packet for `state` (PUBLISH, or PUBREL once PUBREC came) went out on the current
  // connection. False while it waits for the store (QoS 2 with Durability::Durable) or is held.
  bool sent = true;
  // To be resent on the next connection (WorkerCore::resume_inflight), where a PUBLISH waits
  // for room under the client's Receive Maximum: it went out on an earlier connection, or
  // its state reached the store while the client was away.
  bool held = false;
  // A held PUBLISH goes out again with DUP set unless it never went out at all (it waited for
  // the store or for room) [MQTT-3.3.1-1].
  bool resend_as_dup = true;
};

struct PendingWill {
  protocol::Will will;
  std::uint64_t publish_at_ms = 0;  // 0 = not scheduled (client connected)
};

struct Session {
  // REQUIRES: `sub` is not null.
  explicit Session(SubscriberPtr sub) : subscriber(std::move(sub)) {}

  // The id and the client id are the subscriber's (immutable, and it outlives the session):
  // stored once per session, not in each of the session, its subscriber and the worker's
  // session table.
  std::uint64_t id() const noexcept { return subscriber->key.session_id; }
  const std::string& client_id() const noexcept { return subscriber->client_id; }

  const SubscriberPtr subscriber;  // never null
  ClientConnection* connection = nullptr;  // null while offline

  SubscriptionMap subscriptions;  // filter -> options

  DeliveryQueue queue;
  std::uint64_t queued_bytes = 0;
  // By packet id, in send order (the order of redelivery). A pointer while empty.
  InflightWindow<InflightMessage> inflight;
  // These four pack into 8 bytes.
  std::uint16_t next_packet_id = 1;
  protocol::ProtocolVersion version = protocol::ProtocolVersion::V311;
  bool resend_held = false;  // some inflight entries are held (InflightMessage::held)
  std::uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF = never
  LazyOrdered<std::set<std::uint16_t>> inbound_qos2;  // PUBREC sent, PUBREL not yet received

  std::uint64_t expires_at_ms = 0;    // set while offline; 0 = never
  // Boxed: a Will with its 5.0 properties is ~550 bytes, and most sessions have none.
  std::unique_ptr<PendingWill> will;
};

}  // namespace broker::core
