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

struct Message;

// Hears of a persisted message whose last reference went (the Engine deletes its record).
// Thread safety: released() runs on whichever thread drops the last MessagePtr, so an
// implementation must accept calls from any thread.
class MessageReleaser {
 public:
  virtual void released(const Message& message) noexcept = 0;

 protected:
  ~MessageReleaser() = default;
};

struct Message {
  Message() = default;
  explicit Message(MessageReleaser* releaser) noexcept : releaser_(releaser) {}
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message() {
    if (releaser_ && persisted.load(std::memory_order_acquire)) releaser_->released(*this);
  }

  std::string topic;
  protocol::PayloadPtr payload;  // never null
  std::uint8_t qos = 0;          // QoS it was published with
  bool retain = false;           // the RETAIN flag it was published with
  // Publish properties to forward: payload format, content type, response topic, correlation
  // data, user properties; null when there are none (3.1.1, and most 5.0 publishers), which
  // keeps a message to a few cache lines for whichever worker touches it.
  // message_expiry_interval is NOT kept here (see expires_at_ms); topic alias and subscription
  // identifiers are per delivery.
  std::unique_ptr<const protocol::Properties> properties;
  std::string origin_client_id;  // empty when published by the embedding application
  std::uint64_t id = 0;          // broker-wide unique, increasing per origin worker
  std::uint64_t arrival_ms = 0;  // wall clock, ms since the Unix epoch
  std::uint64_t expires_at_ms = 0;  // wall clock; 0 = never expires
  // How it is stored and acknowledged (Options::durability and durability_rules).
  Durability durability = Durability::Durable;
  // Written to the Store (once, by the first worker that needed it); the releaser then
  // deletes the record when the last reference goes.
  mutable std::atomic<bool> persisted{false};

 private:
  MessageReleaser* const releaser_ = nullptr;
};

// The publish properties a message forwards, or null when none of them is set.
std::unique_ptr<const protocol::Properties> forwarded_properties(protocol::Properties p);

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
