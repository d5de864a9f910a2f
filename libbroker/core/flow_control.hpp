#pragma once
// Publisher back-pressure: how a slow subscriber slows the clients that publish to it instead
// of losing their QoS 0 messages.
//
// A connected subscriber is Congested while its unsent output is above
// Limits::output_high_water_bytes (or its session queue is half full), until both are below
// the low-water marks. Its worker writes the state into the shared Subscriber; a worker
// routing a client's PUBLISH reads it for every receiver. When the publisher feeds mostly
// Congested receivers (at least half of this PUBLISH's, or all of them and it reached no
// Open receiver since they became Congested), or a target worker's inbox is too full, that
// client's connection stops being read after this packet: the rest of the bytes already read
// wait, and TCP flow control pushes back to the client. A Congested receiver among Open ones
// holds nobody: one slow vehicle must not slow a broadcast to the fleet, or a platform's
// commands to other vehicles; its own queue bounds apply to it. The publisher's worker sets its bit in Subscriber::waiters (or the inbox's waiters)
// and checks again, so a wake-up cannot be lost; the subscriber's worker wakes every waiting
// worker when the state leaves Congested. A subscriber Congested for longer than
// Limits::max_publisher_pause_ms becomes Stuck: nobody waits for it any more, and QoS 0 to it
// is dropped past max_pending_output_bytes, as without back-pressure. Time runs from the last
// moment its backlog fell by output_low_water_bytes: a slow reader is not a stuck one.
//
// Thread safety: the state is an atomic written by the subscriber's worker only.
#include <cstddef>
#include <cstdint>

#include "core/subscriber.hpp"

namespace broker::core {

enum class FlowState : std::uint8_t { Open = 0, Congested = 1, Stuck = 2 };

inline FlowState flow_of(const Subscriber& subscriber) noexcept {
  return static_cast<FlowState>(subscriber.flow.load(std::memory_order_relaxed));
}

// The second look of a publisher's worker after it set its waiter bit: sequentially
// consistent with set_flow's "store the state, then take the bits", so a wake-up cannot fall
// between them.
inline bool still_congested(const Subscriber& subscriber) noexcept {
  return static_cast<FlowState>(subscriber.flow.load()) == FlowState::Congested;
}

// The waiter bit of worker `w` (workers past 64 share bits; a spare wake-up is harmless).
inline std::uint64_t waiter_bit(unsigned w) noexcept { return std::uint64_t{1} << (w % 64); }

// A worker inbox holding more deliveries than this holds the publishers feeding it; they go
// on below the low mark. Fractions of Limits::max_worker_inbox, so a batch is never dropped
// while publishers can still be held.
inline std::uint64_t inbox_high_water(std::uint64_t max_worker_inbox) noexcept {
  return max_worker_inbox / 4;
}
// While it holds publishers, a Congested subscriber still takes QoS 0 up to this many
// times Limits::max_pending_output_bytes, and queues QoS 1/2 up to this many times
// Limits::max_queued_messages and max_queued_bytes: what they had read before the hold (one
// read each; across workers at most inbox_high_water deliveries) arrives after it. Past it
// even those are dropped, so senders that cannot be held (the embedding application, wills)
// cannot grow memory without bound.
inline constexpr std::uint64_t kHeldOutputFactor = 16;
// So it does for this long after it became Congested, before any publisher's worker saw that:
// deliveries routed meanwhile are on their way. A Congested subscriber that holds nobody once
// it ran out (one slow vehicle among a broadcast's receivers) keeps to its own bounds.
inline constexpr std::uint64_t kHoldGraceMs = 100;

inline std::uint64_t inbox_low_water(std::uint64_t max_worker_inbox) noexcept {
  return max_worker_inbox / 8;
}

// The hold rule's share: `congested` receivers of a PUBLISH out of `receivers` hold its
// publisher while they are at least half.
inline bool at_least_half(std::size_t congested, std::size_t receivers) noexcept {
  return congested * 2 >= receivers;
}

// Engine::congestion_epoch values, which wrap around: whether `a` came before `b`.
inline bool epoch_before(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}

}  // namespace broker::core
