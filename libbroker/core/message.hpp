#pragma once
// The broker's internal application message: immutable once built and shared by reference
// among every receiver, queue and retained slot (MessagePtr). Per-receiver fields (packet id,
// QoS granted, topic alias, subscription identifiers) live in the delivery, not here.
//
// Thread safety: immutable after construction; safe to share across threads.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/options.hpp"
#include "protocol/packet.hpp"

namespace broker::core {

struct Message {
  std::string topic;
  protocol::PayloadPtr payload;  // never null
  std::uint8_t qos = 0;          // QoS it was published with
  bool retain = false;           // the RETAIN flag it was published with
  // Publish properties to forward: payload format, content type, response topic, correlation
  // data, user properties. message_expiry_interval is NOT kept here (see expires_at_ms);
  // topic alias and subscription identifiers are per delivery.
  protocol::Properties properties;
  std::string origin_client_id;  // empty when published by the embedding application
  std::uint64_t id = 0;          // broker-wide unique, increasing per origin worker
  std::uint64_t arrival_ms = 0;  // wall clock, ms since the Unix epoch
  std::uint64_t expires_at_ms = 0;  // wall clock; 0 = never expires
  // How it is stored and acknowledged (Options::durability and durability_rules).
  Durability durability = Durability::Durable;
  // Written to the Store (once, by the first worker that needed it); the Engine's deleter then
  // deletes the record when the last reference goes.
  mutable std::atomic<bool> persisted{false};
};

using MessagePtr = std::shared_ptr<const Message>;

// Seconds left before expiry at `now_ms`, rounded up; nullopt when the message never expires.
// 0 means expired.
inline std::uint32_t remaining_expiry_seconds(const Message& m, std::uint64_t now_ms) noexcept {
  if (m.expires_at_ms <= now_ms) return 0;
  return static_cast<std::uint32_t>((m.expires_at_ms - now_ms + 999) / 1000);
}

inline bool is_expired(const Message& m, std::uint64_t now_ms) noexcept {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_ms;
}

}  // namespace broker::core
