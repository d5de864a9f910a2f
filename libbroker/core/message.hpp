#pragma once
// The broker's internal application message: immutable once built and shared by reference
// among every receiver, queue and retained slot (MessagePtr, util/counted_ptr.hpp).
// Per-receiver fields (packet id, QoS granted, topic alias, subscription identifiers) live in
// the delivery, not here.
//
// Thread safety: its single owner (MessageRef) sets its fields while it is built; once shared
// (MessagePtr) it is immutable and safe to read from any thread.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "broker/options.hpp"
#include "protocol/packet.hpp"
#include "util/counted_ptr.hpp"

namespace broker::core {

class Message;

// Hears of a persisted message whose last reference went (the Engine deletes its record).
// Thread safety: released() runs on whichever thread drops the last MessagePtr, so an
// implementation must accept calls from any thread.
class MessageReleaser {
 public:
  virtual void released(const Message& message) noexcept = 0;

 protected:
  ~MessageReleaser() = default;
};

using MessageRef = CountedPtr<Message>;        // one owner while it is being built
using MessagePtr = CountedPtr<const Message>;  // shared once published

class Message {
 public:
  // A message whose topic and origin client id are copied into its own allocation (one
  // allocation per message, where a std::string topic and origin cost up to two more).
  // `releaser` (may be null) hears of it when the last reference goes.
  static MessageRef create(std::string_view topic, std::string_view origin_client_id,
                           MessageReleaser* releaser);
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  std::string_view topic() const noexcept { return {text(), topic_size_}; }
  // Empty when published by the embedding application.
  std::string_view origin_client_id() const noexcept { return {text() + topic_size_, origin_size_}; }

  // Keeps the publish properties a message forwards (none of them set: none kept).
  void set_properties(protocol::Properties p);
  // Memory the message holds for its payload, topic, origin and properties: what a session
  // queue's byte bound counts, so many small properties cannot slip past it.
  std::uint64_t footprint() const noexcept {
    return payload->size() + topic_size_ + origin_size_ + properties_bytes_;
  }

  protocol::PayloadPtr payload;  // never null
  // Publish properties to forward: payload format, content type, response topic, correlation
  // data, user properties; null when there are none (3.1.1, and most 5.0 publishers), which
  // keeps a message to a few cache lines for whichever worker touches it.
  // message_expiry_interval is NOT kept here (see expires_at_ms); topic alias and subscription
  // identifiers are per delivery. Set through set_properties, which also counts their memory.
  std::unique_ptr<const protocol::Properties> properties;
  std::uint64_t id = 0;          // broker-wide unique, increasing per origin worker
  std::uint64_t arrival_ms = 0;  // wall clock, ms since the Unix epoch
  std::uint64_t expires_at_ms = 0;  // wall clock; 0 = never expires
  std::uint8_t qos = 0;          // QoS it was published with
  bool retain = false;           // the RETAIN flag it was published with
  // How it is stored and acknowledged (Options::durability and durability_rules).
  Durability durability = Durability::Durable;
  // Written to the Store (once, by the first worker that needed it); the releaser then
  // deletes the record when the last reference goes.
  mutable std::atomic<bool> persisted{false};
  // Its publisher was refused it (the store could not write it): deliveries not yet sent are
  // dropped, so that the publisher's retry is not a second copy. Those already sent stay sent.
  mutable std::atomic<bool> refused{false};
  // Set by the retained store when this message, retained under its topic, is replaced,
  // cleared or expired there: a subscribe's snapshot entry for it is stale (checked once per
  // entry, so without a lookup).
  mutable std::atomic<bool> unretained{false};

 private:
  template <typename>
  friend class broker::CountedPtr;
  template <typename U, typename... Args>
  friend U* broker::new_with_trailing(std::size_t, Args&&...);
  template <typename U>
  friend void broker::delete_with_trailing(const U*) noexcept;
  Message(std::uint32_t topic_size, std::uint32_t origin_size, MessageReleaser* releaser) noexcept
      : topic_size_(topic_size), origin_size_(origin_size), releaser_(releaser) {}
  ~Message() {
    if (releaser_ && persisted.load(std::memory_order_acquire)) releaser_->released(*this);
  }
  static void destroy(const Message* message) noexcept;
  // The topic, then the origin client id, follow the message in its allocation.
  const char* text() const noexcept { return reinterpret_cast<const char*>(this + 1); }

  mutable std::atomic<std::uint32_t> references_{1};
  const std::uint32_t topic_size_;
  const std::uint32_t origin_size_;
  std::uint32_t properties_bytes_ = 0;  // set_properties: their memory, saturating
  MessageReleaser* const releaser_;
};

// A Message Expiry Interval of 0 is a lifetime of no time at all: what the broker starts
// sending at once still goes out [MQTT-3.3.2-5] (to subscribers online now, across the hop to
// their worker), but nothing is kept for later. Such a message lives this long, under a second
// so that it is told apart from any other interval, and is passed on with an interval of 0.
inline constexpr std::uint64_t kZeroExpiryLifetimeMs = 900;

// When a message that arrived at `arrival_ms` with Message Expiry Interval `interval_s` expires.
inline std::uint64_t expiry_deadline(std::uint64_t arrival_ms, std::uint32_t interval_s) noexcept {
  return arrival_ms + (interval_s == 0 ? kZeroExpiryLifetimeMs : std::uint64_t{interval_s} * 1000);
}

// Whether `m` came with a Message Expiry Interval of 0: it goes to no session that is offline.
inline bool lives_no_time(const Message& m) noexcept {
  return m.expires_at_ms != 0 && m.expires_at_ms < m.arrival_ms + 1000;
}

// The Message Expiry Interval to send at `now_ms` for a message that expires (expires_at_ms is
// not 0): the seconds left, rounded up; 0 once expired, and for an interval of 0.
inline std::uint32_t remaining_expiry_seconds(const Message& m, std::uint64_t now_ms) noexcept {
  if (m.expires_at_ms <= now_ms || lives_no_time(m)) return 0;
  return static_cast<std::uint32_t>((m.expires_at_ms - now_ms + 999) / 1000);
}

inline bool is_expired(const Message& m, std::uint64_t now_ms) noexcept {
  return m.expires_at_ms != 0 && m.expires_at_ms <= now_ms;
}

}  // namespace broker::core
