#pragma once
// Retained messages: at most one per topic name, shared by all workers.
//
// Design: a trie keyed by topic level, so a wildcard subscription walks only the matching
// branches; guarded by a reader/writer lock (setting a retained message is far rarer than
// reading on subscribe). Expired messages are dropped lazily when met, by purge_expired(), and
// by set() when the store is full; take_expired() then tells which records to delete.
//
// Thread safety: all methods are safe from any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/message.hpp"

namespace broker::core {

class RetainedStore {
 public:
  // max_messages: past it, retaining a message under a new topic is refused.
  explicit RetainedStore(std::uint64_t max_messages = 1000000);
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

  // Whether set() would now refuse `message`: it does not clear, the store is full even once
  // what expired is dropped, and its topic holds no message to replace. A publisher can then
  // be told before its message goes anywhere; another worker's set() may still take the last
  // place first.
  bool refuses(const Message& message, std::uint64_t now_ms);

  // Appends the retained messages whose topic matches `filter` (valid, not shared) and that are
  // not expired at `now_ms`.
  void match(std::string_view filter, std::uint64_t now_ms, std::vector<MessagePtr>& out) const;

  // Whether `message`, which match() returned, is still the one retained under its topic.
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace broker::core
