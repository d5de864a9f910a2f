#pragma once
// The topic index: every subscription of every session, shared by all workers and read on
// every publish.
//
// Design: a trie keyed by topic level ('+' and '#' are ordinary child keys, matched specially).
// Reads must not take a global lock, so the index uses a "big reader" lock: one mutex per
// reader slot (one slot per worker, each on its own cache line). A worker's match() locks only
// its own slot's mutex, which no other reader ever touches, so reads never contend with each
// other; subscribe()/unsubscribe() lock every slot in order and are slower, as DESIGN.md allows.
//
// Shared subscriptions ("$share/<group>/<filter>") live in the node of <filter>, one group per
// name; match() picks one member per group (round robin or random), preferring connected
// members that keep up (flow Open), then connected ones.
//
// Thread safety: all methods are safe from any thread; match() from slot `s` must not run
// concurrently with another match() from the same slot (one slot per worker thread).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/subscriber.hpp"

namespace broker::core {

struct SubscriptionOptions {
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  std::uint32_t subscription_id = 0;  // 0 = none
  bool operator==(const SubscriptionOptions&) const = default;
};

// Names one shared subscription (group and filter) in 32 bits: what a delivery keeps of the
// shared subscription it came through, so it can go back to that group if its member leaves.
std::uint32_t shared_subscription_tag(std::string_view group, std::string_view filter) noexcept;

// One matching subscription. For a shared subscription, the one member picked for the group.
struct Match {
  SubscriberKey key;
  SubscriptionOptions options;
  bool shared = false;
  std::uint32_t shared_tag = 0;  // shared: shared_subscription_tag of its group and filter
  // Keeps client id and flags readable after the index lock is gone. Always set for shared
  // matches; for plain ones when match() was asked for it or its flow is not Open (back-
  // pressure: core/flow_control.hpp), null otherwise.
  SubscriberPtr subscriber;
};

enum class SharedPolicy : std::uint8_t { RoundRobin, Random };

class TopicIndex {
 public:
  // reader_slots: how many threads call match() concurrently (one per worker, plus spares).
  explicit TopicIndex(unsigned reader_slots, SharedPolicy policy = SharedPolicy::RoundRobin);
  ~TopicIndex();
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;

  // Adds or replaces the subscription of `subscriber` to `filter` (a valid filter; may be
  // "$share/<group>/<f>"). Returns true when it is new, false when an existing one was replaced
  // or nothing was done (an invalid filter; a worker index above 65,535).
  bool subscribe(const SubscriberPtr& subscriber, std::string_view filter,
                 const SubscriptionOptions& options);
  // Returns true when the subscription existed and was removed.
  bool unsubscribe(const SubscriberKey& key, std::string_view filter);

  // Appends to `out` every subscription matching topic name `topic` (non-shared ones: one
  // Match per subscription, so a session with overlapping filters appears several times;
  // shared ones: one Match per group). Plain matches carry their Subscriber only when
  // `with_subscribers`: fetching it costs a cache miss and an atomic increment per match, which
  // a caller that needs only the key and options should not pay.
  // Returns true when what it appended names no session twice and holds no shared match (all
  // from one subscriber list), so a caller grouping matches by session may skip that.
  // REQUIRES: slot < reader_slots.
  bool match(unsigned slot, std::string_view topic, std::vector<Match>& out,
             bool with_subscribers = true) const;

  // Picks a member of shared group `group` on `filter` other than `exclude`, preferring
  // connected ones; used to hand a departed member's unacknowledged messages to another.
  // Returns false when the group has no other member.
  bool pick_shared(unsigned slot, std::string_view group, std::string_view filter,
                   const SubscriberKey& exclude, Match& out) const;

  std::uint64_t subscription_count() const noexcept;

  // Sets `subscriber.flow` (back-pressure: core/flow_control.hpp; 0 is Open). The index counts
  // the subscribers that are not Open, so that while there are none, match() does not read any
  // Subscriber (a cache miss per match at millions of sessions). Called by the subscriber's
  // worker only; a Subscriber must be Open again before it is destroyed.
  void set_flow(Subscriber& subscriber, std::uint8_t state) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace broker::core
