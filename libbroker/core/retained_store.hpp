#pragma once
// Retained messages: at most one per topic name, shared by all workers.
//
// Design: a trie keyed by topic level, so a wildcard subscription walks only the matching
// branches; guarded by a reader/writer lock (setting a retained message is far rarer than
// reading on subscribe). Expired messages are dropped lazily when met, by purge_expired(), and
// by set() when the store is full; take_expired() then tells which records to delete. A
// subscription's match is a Walk taken in bounded steps, each under the read lock.
//
// Thread safety: all methods are safe from any thread; one Walk is used by one thread at a time.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/message.hpp"

namespace broker::core {

class RetainedStore {
 public:
  // Past max_messages, retaining a message under a new topic is refused; so is any message
  // that would take the footprint() of all retained messages past max_bytes.
  explicit RetainedStore(std::uint64_t max_messages = 1000000, std::uint64_t max_bytes = ~std::uint64_t{0});
  ~RetainedStore();
  RetainedStore(const RetainedStore&) = delete;
  RetainedStore& operator=(const RetainedStore&) = delete;

  enum class SetResult { Stored, Replaced, Cleared, NothingToClear, Full };
  // Whether retaining `message` clears its topic instead: an empty payload [MQTT-3.3.1-6,
  // 3.3.1-7], or a Message Expiry Interval of 0, which replaces it and expires at once.
  static bool clears(const Message& message) noexcept;
  // Stores `message` under its topic, replacing the previous one, or clears the topic (clears()).
  // `now_ms`: a full store first drops what expired (at most once a second), so expired
  // messages do not hold places under max_messages.
  SetResult set(const MessagePtr& message, std::uint64_t now_ms = 0);

  // Whether set() would now refuse `message`: it does not clear, and it passes a bound even
  // once what expired is dropped (a new topic in a store holding max_messages, or bytes past
  // max_bytes). A publisher can then be told before its message goes anywhere; another
  // worker's set() may still take the last place first.
  bool refuses(const Message& message, std::uint64_t now_ms);

  struct Node;  // opaque here, like Impl: defined in the .cpp
  struct Impl;

  // A match taken a bounded number of trie nodes at a time (walk()), so that a wildcard
  // subscription over a million retained topics does not hold its worker, and the store's
  // writers, for the whole match. Messages retained under new topics after it began may be
  // missed; the subscription made before it receives those live. Nodes taken out of the trie
  // while a walk that may hold them is open are freed once it closes, so a walk never reads
  // freed memory. It must not outlive its store.
  class Walk {
   public:
    ~Walk();
    Walk(const Walk&) = delete;
    Walk& operator=(const Walk&) = delete;
    bool done() const noexcept { return stack_.empty(); }

   private:
    friend class RetainedStore;
    friend struct RetainedStore::Impl;
    // REQUIRES: the store's lock held exclusively.
    Walk(RetainedStore::Impl& store, std::string_view filter);
    RetainedStore::Impl& store_;
    const std::string filter_;
    const std::uint64_t serial_;  // the walks' start order, for freeing nodes taken out
    // Nodes still to visit, each with where its level is in filter_ (or kEnd, kSubtree, kSlice).
    std::vector<std::pair<const Node*, std::size_t>> stack_;
    // A node with thousands of children (a per-vehicle level) is walked through its own table,
    // a slice a step, so that a step never copies a million of them; a writer about to change
    // that table copies the children not reached yet into `rest` first (Impl::freeze).
    struct Slices {
      const Node* node = nullptr;  // null: none in progress
      std::size_t pos = 0;         // the children's place in filter_
      std::size_t next_slot = 0;   // not frozen: the table's next slot
      bool frozen = false;
      std::vector<const Node*> rest;  // frozen: the children still to visit
    };
    Slices slices_;
  };
  // A walk of the retained messages whose topic matches `filter` (valid, not shared); one
  // walk() with an unbounded budget takes it whole.
  std::unique_ptr<Walk> start_walk(std::string_view filter);
  // Appends to `out` the matching messages not expired at `now_ms` that the walk meets in about
  // `budget` nodes (children put aside count too, and a level of thousands of them goes a
  // slice at a time); returns the nodes it counted. Until walk.done().
  std::size_t walk(Walk& walk, std::uint64_t now_ms, std::size_t budget, std::vector<MessagePtr>& out);

  // Whether `message`, which a walk met, is still the one retained under its topic.
  bool holds(const Message& message) const;
  // The message retained under `topic` and not expired at `now_ms`, or null.
  MessagePtr current(std::string_view topic, std::uint64_t now_ms) const;

  // Removes every message expired at `now_ms`; returns how many.
  std::uint64_t purge_expired(std::uint64_t now_ms);

  // The stored messages (durability other than Memory) dropped for expiry since the last call:
  // their topic and id, for a delete that spares a newer message retained meanwhile.
  struct Expired {
    std::string topic;
    std::uint64_t id;
  };
  std::vector<Expired> take_expired();

  std::uint64_t size() const noexcept;
  // The footprint() of the messages stored, which max_bytes bounds.
  std::uint64_t bytes() const noexcept;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace broker::core
