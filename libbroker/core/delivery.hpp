#pragma once
// Delivery: one message on its way to one session, with the per-receiver fields the shared
// Message does not hold.
//
// Thread safety: plain value; moved between workers inside a batch, then owned by one session.
#include <cstdint>
#include <vector>

#include "broker/store.hpp"
#include "core/message.hpp"

namespace broker::core {

struct Delivery {
  MessagePtr message;
  std::vector<std::uint32_t> subscription_ids;
  std::uint8_t qos = 0;     // min(subscription QoS, publish QoS), max over overlapping subscriptions
  bool retain = false;      // RETAIN flag as sent (retain-as-published, or a retained message on subscribe)
  // Came through a shared subscription: if unacknowledged when its session leaves, it goes
  // to another member of the group (found again from the session's shared filters).
  bool shared = false;
  // A StoredDelivery for it was written (the session is persistent and QoS > 0).
  bool stored = false;
  // Which shared subscription (shared_subscription_tag): a session in two groups whose filters
  // match the topic holds a copy for each and hands each back to its own group. Stored with the
  // delivery; 0 only in records written before format version 2, then the first matching
  // group takes it. Not shared: 0, kRetainZeroCopyTag, or a retained copy's tag
  // (Engine::next_retained_copy_tag).
  std::uint32_t shared_tag = 0;
};

// What a queued delivery counts against Limits::max_queued_bytes.
inline std::uint64_t queued_size(const Delivery& d) noexcept { return d.message ? d.message->footprint() : 0; }

// The shared_tag of the RETAIN 0 copy of a retained message whose RETAIN 1 copy goes to the
// same session (overlapping subscriptions that differ in Retain As Published): it gives that
// copy a stored record of its own, so that both come back after a restart.
using broker::kRetainZeroCopyTag;
using broker::kFirstRetainedCopyTag;

}  // namespace broker::core
