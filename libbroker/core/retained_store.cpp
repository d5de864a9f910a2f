// Retained messages: a level trie of topic names under a std::shared_mutex (see the header).
#include "core/retained_store.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>

#include "core/child_set.hpp"

namespace broker::core {
namespace {

constexpr std::size_t kEnd = std::string_view::npos;  // "no level left"

std::pair<std::string_view, std::size_t> level_at(std::string_view s, std::size_t pos) noexcept {
  const std::size_t slash = s.find('/', pos);
  if (slash == std::string_view::npos) return {s.substr(pos), kEnd};
  return {s.substr(pos, slash - pos), slash + 1};
}

// Walk::stack_ marks: emit the node; emit it and everything below it; the next slice of the
// walk's Slices (the node is theirs).
constexpr std::size_t kSubtree = kEnd - 1;
constexpr std::size_t kSlice = kEnd - 2;
// Children a node needs for a walk to take them a slice at a time, and a slice's table slots.
constexpr std::size_t kSlicedChildren = 4096;
constexpr std::size_t kSliceSlots = 4096;

}  // namespace

struct RetainedStore::Node {
  explicit Node(std::string_view k) : name(k) {}
  std::string name;  // this level
  ChildSet<Node> children;
  MessagePtr message;  // null when only a path to deeper topics

  std::string_view key() const noexcept { return name; }
  bool unused() const noexcept { return !message && children.empty(); }
};

namespace {

using Node = RetainedStore::Node;

// Empties a node's slot, telling its message that it is no longer the retained one.
void vacate(MessagePtr& slot) noexcept {
  slot->unretained.store(true, std::memory_order_release);
  slot.reset();
}

}  // namespace

struct RetainedStore::Impl {
  Impl(std::uint64_t max_messages, std::uint64_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes), root_({}) {}

  ~Impl() {
    std::vector<Node*> todo;  // iterative: topics may be thousands of levels deep
    root_.children.for_each([&](Node* c) { todo.push_back(c); });
    while (!todo.empty()) {
      Node* n = todo.back();
      todo.pop_back();
      n->children.for_each([&](Node* c) { todo.push_back(c); });
      delete n;
    }
    for (auto& [n, serial] : retired_) delete n;  // no walk is open: none may outlive the store
  }

  // Fills `path` (root first) with the nodes of `topic`; false when one is missing.
  bool find_path(std::string_view topic, std::vector<Node*>& path) {
    path.clear();
    Node* n = &root_;
    path.push_back(n);
    for (std::size_t pos = 0; pos != kEnd;) {
      auto [level, next] = level_at(topic, pos);
      n = n->children.find(level);
      if (n == nullptr) return false;
      path.push_back(n);
      pos = next;
    }
    return true;
  }

  // The node of `topic`, or null. REQUIRES: mu_ held.
  const Node* find(std::string_view topic) const;

  // Removes the trailing nodes of `path` that hold nothing any more.
  void prune(const std::vector<Node*>& path) {
    for (std::size_t i = path.size() - 1; i > 0; --i) {
      Node* n = path[i];
      if (!n->unused()) return;
      freeze(path[i - 1]);
      path[i - 1]->children.erase(n->key());
      retire(n);
    }
  }

  // Frees a node taken out of the trie, or keeps it while a walk that may hold it is open.
  // REQUIRES: mu_ held exclusively.
  void retire(Node* n) {
    if (open_walks_.empty()) {
      delete n;
    } else {
      retired_.emplace_back(n, walk_serial_);
    }
  }

  // Drops expired `m` if it is still the one stored under its topic. REQUIRES: mu_ held.
  void drop_expired(const MessagePtr& m) {
    std::vector<Node*> path;
    if (!find_path(m->topic(), path) || path.back()->message != m) return;
    note_expired(*m);
    forget(path.back()->message);
    prune(path);
  }

  void note_expired(const Message& m) {
    if (m.durability != Durability::Memory) expired_.push_back({std::string(m.topic()), m.id});
  }

  // Empties a slot that held a counted message. REQUIRES: mu_ held exclusively.
  void forget(MessagePtr& slot) noexcept {
    bytes_.fetch_sub(slot->footprint(), std::memory_order_relaxed);
    count_.fetch_sub(1, std::memory_order_relaxed);
    vacate(slot);
  }

  // Whether storing `message` would pass a bound: a new topic past max_messages, or more than
  // max_bytes in all (a replacement counts only what it adds, so one never shrinks past it).
  bool over(const Message& message, const Node* existing) const noexcept {
    const bool replaces = existing != nullptr && existing->message;
    if (!replaces && count_.load(std::memory_order_relaxed) >= max_messages_) return true;
    const std::uint64_t freed = replaces ? existing->message->footprint() : 0;  // within bytes_
    return bytes_.load(std::memory_order_relaxed) - freed + message.footprint() > max_bytes_;
  }

  // Whether `message` may pass a bound, without the lock: false is certain.
  bool may_be_over(const Message& message) const noexcept {
    return count_.load(std::memory_order_relaxed) >= max_messages_ ||
           bytes_.load(std::memory_order_relaxed) + message.footprint() > max_bytes_;
  }

  // Drops what expired when a bound is reached, at most once a second (a walk, which may prune
  // nodes of a path the caller holds). REQUIRES: mu_ held exclusively.
  void purge_when_full(std::uint64_t now_ms) {
    if (now_ms < full_purge_ms_ + 1000) return;
    full_purge_ms_ = now_ms;
    purge(now_ms);
  }

  // Notes when `m` expires, for purge's shortcut. REQUIRES: mu_ held.
  void track_expiry(const Message& m) noexcept {
    if (m.expires_at_ms != 0) next_expiry_ms_ = std::min(next_expiry_ms_, m.expires_at_ms);
  }

  // Removes every message expired at `now_ms`; returns how many. REQUIRES: mu_ held.
  std::uint64_t purge(std::uint64_t now_ms) {
    // Nothing can have expired yet: no walk. A million retained topics take a worker a few
    // hundred milliseconds to walk, every minute and, when the store is full, every second.
    if (now_ms < next_expiry_ms_) return 0;
    next_expiry_ms_ = kNever;
    // Pre-order list of (node, parent); walking it backwards visits children before parents,
    // so a branch emptied by expiry is pruned bottom-up in one pass.
    std::vector<std::pair<Node*, Node*>> order;
    root_.children.for_each([&](Node* c) { order.emplace_back(c, &root_); });
    for (std::size_t i = 0; i < order.size(); ++i) {
      Node* n = order[i].first;
      n->children.for_each([&](Node* c) { order.emplace_back(c, n); });
    }
    std::uint64_t removed = 0;
    for (std::size_t i = order.size(); i-- > 0;) {
      auto [n, parent] = order[i];
      if (n->message && is_expired(*n->message, now_ms)) {
        note_expired(*n->message);
        forget(n->message);
        ++removed;
      } else if (n->message) {
        track_expiry(*n->message);
      }
      if (n->unused()) {
        freeze(parent);
        parent->children.erase(n->key());
        retire(n);
      }
    }
    return removed;
  }

  const std::uint64_t max_messages_;
  const std::uint64_t max_bytes_;
  mutable std::shared_mutex mu_;
  Node root_;  // guarded by mu_
  // Messages stored and their footprint(); written under mu_, read without it as well.
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::vector<Expired> expired_;     // guarded by mu_: dropped, record not yet deleted
  std::uint64_t full_purge_ms_ = 0;  // guarded by mu_: when a full store last purged
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};
  // Walks: their serials, in start order, of those open (guarded by mu_); nodes taken out of
  // the trie while one was open, each with the newest walk's serial then (only walks up to
  // it may hold the node), freed once every such walk closed.
  std::uint64_t walk_serial_ = 0;
  std::set<std::uint64_t> open_walks_;
  std::deque<std::pair<Node*, std::uint64_t>> retired_;
  // Walks going through a node's table in slices. Changed by steps, which hold mu_ shared,
  // under slicing_mu_; writers (mu_ exclusive) read it without.
  std::mutex slicing_mu_;
  std::vector<Walk*> slicing_;

  // Before `n`'s children change (REQUIRES: mu_ held exclusively): the walks going through its
  // table take a copy of the children they have not reached.
  void freeze(const Node* n) {
    if (slicing_.empty()) return;
    std::erase_if(slicing_, [n](Walk* w) {
      auto& sl = w->slices_;
      if (sl.node != n) return false;
      sl.frozen = true;
      n->children.for_each_in(sl.next_slot, n->children.slot_count(),
                              [&](const Node* c) { sl.rest.push_back(c); });
      return true;
    });
  }

  // Visits Walk::stack_'s nodes until about `budget` are counted. REQUIRES: mu_ held.
  std::size_t step(Walk& walk, std::uint64_t now_ms, std::size_t budget, std::vector<MessagePtr>& out,
                   std::vector<MessagePtr>& expired);
  // guarded by mu_: no message expires before this (a bound: cleared ones are not taken out)
  std::uint64_t next_expiry_ms_ = kNever;
};

RetainedStore::RetainedStore(std::uint64_t max_messages, std::uint64_t max_bytes)
    : impl_(std::make_unique<Impl>(max_messages, max_bytes)) {}

RetainedStore::~RetainedStore() = default;

RetainedStore::SetResult RetainedStore::set(const MessagePtr& message, std::uint64_t now_ms) {
  if (!message) return SetResult::NothingToClear;
  Impl& impl = *impl_;
  std::unique_lock lock(impl.mu_);
  std::vector<Node*> path;
  const bool found = impl.find_path(message->topic(), path);
  Node* existing = found ? path.back() : nullptr;
  if (clears(*message)) {
    if (existing == nullptr || !existing->message) return SetResult::NothingToClear;
    impl.forget(existing->message);
    impl.prune(path);
    return SetResult::Cleared;
  }
  if (impl.over(*message, existing)) {
    impl.purge_when_full(now_ms);
    // The purge may have pruned part of the path, and dropped an expired message it replaces.
    existing = impl.find_path(message->topic(), path) ? path.back() : nullptr;
    if (impl.over(*message, existing)) return SetResult::Full;
  }
  if (existing != nullptr && existing->message) {  // replaces it [MQTT-3.3.1-5]
    if (existing->message == message) return SetResult::Replaced;  // the same one, set again
    // Modulo 2^64: a smaller message takes its difference off.
    impl.bytes_.fetch_add(message->footprint() - existing->message->footprint(), std::memory_order_relaxed);
    existing->message->unretained.store(true, std::memory_order_release);
    existing->message = message;
    impl.track_expiry(*message);
    return SetResult::Replaced;
  }
  // Create the missing tail of the path; find_path stopped at the deepest existing node.
  Node* n = path.back();
  std::size_t pos = 0;
  for (std::size_t depth = 1; depth < path.size(); ++depth) {
    pos = level_at(message->topic(), pos).second;
  }
  while (pos != kEnd) {
    auto [level, next] = level_at(message->topic(), pos);
    auto child = std::make_unique<Node>(level);
    if (n->children.insert_moves()) impl.freeze(n);
    n->children.insert(child.get());
    n = child.release();
    pos = next;
  }
  n->message = message;
  impl.track_expiry(*message);
  impl.count_.fetch_add(1, std::memory_order_relaxed);
  impl.bytes_.fetch_add(message->footprint(), std::memory_order_relaxed);
  return SetResult::Stored;
}

const Node* RetainedStore::Impl::find(std::string_view topic) const {
  const Node* n = &root_;
  for (std::size_t pos = 0; pos != kEnd && n != nullptr;) {
    auto [level, next] = level_at(topic, pos);
    n = n->children.find(level);
    pos = next;
  }
  return n;
}

bool RetainedStore::clears(const Message& message) noexcept {
  return !message.payload || message.payload->empty() || lives_no_time(message);
}

bool RetainedStore::refuses(const Message& message, std::uint64_t now_ms) {
  Impl& impl = *impl_;
  if (!impl.may_be_over(message) || clears(message)) return false;  // the common case, without the lock
  std::unique_lock lock(impl.mu_);
  if (!impl.over(message, impl.find(message.topic()))) return false;
  impl.purge_when_full(now_ms);
  return impl.over(message, impl.find(message.topic()));
}

bool RetainedStore::holds(const Message& message) const {
  return !message.unretained.load(std::memory_order_acquire);
}

MessagePtr RetainedStore::current(std::string_view topic, std::uint64_t now_ms) const {
  std::shared_lock lock(impl_->mu_);
  const Node* n = impl_->find(topic);
  if (n == nullptr || !n->message || is_expired(*n->message, now_ms)) return nullptr;
  return n->message;
}

RetainedStore::Walk::Walk(RetainedStore::Impl& store, std::string_view filter)
    : store_(store), filter_(filter), serial_(++store.walk_serial_), stack_{{&store.root_, 0}} {
  store_.open_walks_.insert(serial_);
}

RetainedStore::Walk::~Walk() {
  std::unique_lock lock(store_.mu_);
  std::erase(store_.slicing_, this);
  store_.open_walks_.erase(serial_);
  auto& retired = store_.retired_;
  while (!retired.empty() &&
         (store_.open_walks_.empty() || retired.front().second < *store_.open_walks_.begin())) {
    delete retired.front().first;
    retired.pop_front();
  }
}

std::unique_ptr<RetainedStore::Walk> RetainedStore::start_walk(std::string_view filter) {
  std::unique_lock lock(impl_->mu_);
  return std::unique_ptr<Walk>(new Walk(*impl_, filter));
}

std::size_t RetainedStore::Impl::step(Walk& walk, std::uint64_t now_ms, std::size_t budget,
                                      std::vector<MessagePtr>& out, std::vector<MessagePtr>& expired) {
  auto emit = [&](const Node& n) {
    if (!n.message) return;
    if (is_expired(*n.message, now_ms)) {
      expired.push_back(n.message);
    } else {
      out.push_back(n.message);
    }
  };
  // A wildcard first level never matches a topic starting with '$' [MQTT-4.7.2-1].
  auto visible = [&](const Node& parent, const Node& child) {
    return &parent != &root_ || child.name.empty() || child.name.front() != '$';
  };
  auto& stack = walk.stack_;
  auto& slices = walk.slices_;
  const std::string_view filter = walk.filter_;
  std::size_t counted = 0;
  // Puts `n`'s children on the stack, each with `pos`; a walk with no slices in progress takes
  // a node with thousands of them a slice at a time instead.
  auto expand = [&](const Node* n, std::size_t pos) {
    if (n->children.size() >= kSlicedChildren && slices.node == nullptr) {
      slices = {n, pos, 0, false, {}};
      std::lock_guard registry(slicing_mu_);
      slicing_.push_back(&walk);
      stack.emplace_back(n, kSlice);
      return;
    }
    counted += n->children.size();
    n->children.for_each([&](const Node* c) {
      if (visible(*n, *c)) stack.emplace_back(c, pos);
    });
  };
  while (!stack.empty() && counted < budget) {
    const Node* n = stack.back().first;  // not a structured binding: lambdas below use it
    const std::size_t pos = stack.back().second;
    stack.pop_back();
    ++counted;
    if (pos == kEnd) {
      emit(*n);
    } else if (pos == kSubtree) {
      emit(*n);
      expand(n, kSubtree);
    } else if (pos == kSlice) {
      // The next slice goes above the mark, so it is walked before the slice after it.
      const std::size_t below = stack.size();
      stack.emplace_back(n, kSlice);
      auto take = [&](const Node* c) {
        if (visible(*n, *c)) stack.emplace_back(c, slices.pos);
      };
      if (slices.frozen) {
        const std::size_t k = std::min(kSliceSlots, slices.rest.size());
        std::for_each(slices.rest.end() - static_cast<std::ptrdiff_t>(k), slices.rest.end(), take);
        slices.rest.resize(slices.rest.size() - k);
      } else {
        n->children.for_each_in(slices.next_slot, slices.next_slot + kSliceSlots, take);
        slices.next_slot += kSliceSlots;
      }
      counted += kSliceSlots;
      if (slices.frozen ? slices.rest.empty() : slices.next_slot >= n->children.slot_count()) {
        stack.erase(stack.begin() + static_cast<std::ptrdiff_t>(below));  // the mark: no slice left
        std::lock_guard registry(slicing_mu_);
        std::erase(slicing_, &walk);
        slices = {};
      }
    } else {
      const auto [level, next_pos] = level_at(filter, pos);
      if (level == "#") {
        // This level's parent ("sport/#" matches "sport") and everything below.
        if (n != &root_) emit(*n);
        expand(n, kSubtree);
      } else if (level == "+") {
        expand(n, next_pos);
      } else if (const Node* c = n->children.find(level)) {
        stack.emplace_back(c, next_pos);
      }
    }
  }
  return counted;
}

std::size_t RetainedStore::walk(Walk& walk, std::uint64_t now_ms, std::size_t budget,
                                std::vector<MessagePtr>& out) {
  std::vector<MessagePtr> expired;
  std::size_t counted = 0;
  {
    std::shared_lock lock(impl_->mu_);
    counted = impl_->step(walk, now_ms, budget, out, expired);
  }
  if (!expired.empty()) {
    // Dropped lazily when met: retaking the lock as a writer is rare (once per expired message).
    std::unique_lock lock(impl_->mu_);
    for (const auto& m : expired) impl_->drop_expired(m);
  }
  return counted;
}

std::uint64_t RetainedStore::purge_expired(std::uint64_t now_ms) {
  std::unique_lock lock(impl_->mu_);
  return impl_->purge(now_ms);
}

std::vector<RetainedStore::Expired> RetainedStore::take_expired() {
  std::unique_lock lock(impl_->mu_);
  return std::exchange(impl_->expired_, {});
}

std::uint64_t RetainedStore::size() const noexcept {
  return impl_->count_.load(std::memory_order_relaxed);
}

std::uint64_t RetainedStore::bytes() const noexcept {
  return impl_->bytes_.load(std::memory_order_relaxed);
}

}  // namespace broker::core
