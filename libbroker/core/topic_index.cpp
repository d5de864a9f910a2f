// The topic index: a level trie under a "big reader" lock (see topic_index.hpp), beside a hash
// of the filters without wildcards.
//
// Memory layout, because 10M subscriptions must fit in about 1 GB plus topic bytes:
// - Filters without wildcards (a vehicle's own "fleet/<region>/<VIN>/cmd": nearly all of a
//   fleet's subscriptions) are not in the trie: they are ExactNodes found by the hash of the
//   whole filter, in one of 4,096 shards. At 10M subscriptions a trie walk to such a leaf is
//   four dependent cache misses (the VIN in its region's table, the VIN's node, its child
//   table, the leaf); the hash is two (the slot, the node). On this kind of VM a miss costs
//   about 300 ns, so that is most of a match. Shards keep a table's rebuild (it rereads every
//   node's key) short under the writers' lock. The trie then holds only wildcard and shared
//   filters, usually few and hot in cache, and is not walked at all while it holds none.
// - A Node is one 48-byte block plus its level's bytes, stored right behind it (no
//   std::string): child set (16), subscriber list (24), entry count, key length and flags. An
//   ExactNode is 32 bytes plus the whole filter.
// - Nodes and child tables come from a TrieArena (huge pages, 8-byte rounding, no per-block
//   header): at 10M subscriptions a match is a chain of cache and TLB misses.
// - A subscriber entry is {session id, Subscriber* with the worker index in its high bits,
//   options}: 24 bytes. The first one lives inside the node, so the usual leaf (one session's
//   unique filter) is a single allocation. The key is read from the entry itself: reading the
//   Subscriber (a cache and TLB miss of its own) and bumping its atomic reference count cost
//   more than the rest of a match at 10M subscriptions, so match() does that only when the
//   caller asks (a broker with a store needs the persistence flag). Entries hold plain
//   pointers; each Subscriber holds itself for the index while entries name it.
// - Shared group members are {SubscriberPtr, options}: choosing one reads `connected`.
// - Shared groups are rare, so they live in a side table keyed by node, flagged in the node,
//   instead of costing every node a pointer.
#include "core/topic_index.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/child_set.hpp"
#include "core/trie_arena.hpp"
#include "protocol/topic.hpp"

namespace broker::core {
namespace {

constexpr std::size_t kEnd = std::string_view::npos;  // "no level left" in a topic walk

// Splits at `pos` the level that starts there; returns it and the next level's start or kEnd.
std::pair<std::string_view, std::size_t> level_at(std::string_view s, std::size_t pos) noexcept {
  const std::size_t slash = s.find('/', pos);
  if (slash == std::string_view::npos) return {s.substr(pos), kEnd};
  return {s.substr(pos, slash - pos), slash + 1};
}

bool is_wildcard(std::string_view level) noexcept { return level == "+" || level == "#"; }

const std::uint64_t kPlusHash = level_hash("+");
const std::uint64_t kHashHash = level_hash("#");

// One level of a topic being matched, hashed once however many nodes it is looked up in.
struct Level {
  std::uint32_t pos;
  std::uint32_t len;
  std::uint64_t hash;
};

struct KeyHash {
  std::size_t operator()(const SubscriberKey& k) const noexcept {
    return static_cast<std::size_t>((k.session_id * 0x9E3779B97F4A7C15ull) ^ k.worker);
  }
};

// A plain subscription.
struct Entry {
  static constexpr unsigned kWorkerShift = 48;  // user-space addresses are below 2^48

  Entry(const Subscriber* s, const SubscriptionOptions& o) noexcept
      : session_id(s->key.session_id),
        subscriber(reinterpret_cast<std::uintptr_t>(s) |
                   (std::uintptr_t{s->key.worker} << kWorkerShift)),
        options(o) {}

  SubscriberKey key() const noexcept {
    return {static_cast<std::uint32_t>(subscriber >> kWorkerShift), session_id};
  }
  Subscriber* ptr() const noexcept {
    return reinterpret_cast<Subscriber*>(subscriber & ((std::uintptr_t{1} << kWorkerShift) - 1));
  }

  std::uint64_t session_id;
  std::uintptr_t subscriber;  // Subscriber*, the worker index in the top 16 bits
  SubscriptionOptions options;
};
static_assert(sizeof(Entry) == 24, "keep subscriber entries compact");

// A shared group's member.
struct MemberEntry {
  SubscriberPtr subscriber;  // never null
  SubscriptionOptions options;
};

SubscriberKey key_of(const Entry& e) noexcept { return e.key(); }
const SubscriberKey& key_of(const MemberEntry& e) noexcept { return e.subscriber->key; }

// Whether the index can hold subscriptions of `s`: its worker index and address must leave
// Entry's packing room (workers are threads, so this always holds in a broker).
bool packable(const Subscriber& s) noexcept {
  return s.key.worker <= 0xFFFF && (reinterpret_cast<std::uintptr_t>(&s) >> Entry::kWorkerShift) == 0;
}

// The subscribers of one filter, or the members of one shared group (E: Entry or MemberEntry).
// The entry count is kept by the owner (a Node packs it beside its key length) and passed in:
//   0 entries: nothing;  1: inline, no allocation (the norm: most filters are one session's);
//   2..kIndexedMin: an array with room for bit_ceil(n);  more: a vector plus an index by
//   session, so a fleet-wide filter with a million subscribers adds and removes in O(1).
template <typename Entry>
class SubList {
 public:
  SubList() noexcept {}  // the union starts with no member alive
  ~SubList() {}          // REQUIRES: clear() was called
  SubList(const SubList&) = delete;
  SubList& operator=(const SubList&) = delete;

  std::span<const Entry> view(std::uint32_t n) const noexcept {
    if (n == 0) return {};
    if (n == 1) return {&one_, 1};
    if (n <= kIndexedMin) return {small_, n};
    return {big_->entries.data(), n};
  }

  Entry* find(std::uint32_t n, const SubscriberKey& key) noexcept {
    if (n > kIndexedMin) {
      auto it = big_->pos.find(key);
      return it == big_->pos.end() ? nullptr : &big_->entries[it->second];
    }
    Entry* e = n == 1 ? &one_ : small_;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (key_of(e[i]) == key) return &e[i];
    }
    return nullptr;
  }

  // Adds or replaces the entry of `entry`'s session; true when added (and `n` incremented).
  bool upsert(std::uint32_t& n, Entry&& entry) {
    if (Entry* e = find(n, key_of(entry))) {
      *e = std::move(entry);  // a recreated Subscriber for the same session replaces the old one
      return false;
    }
    if (n == 0) {
      new (&one_) Entry{std::move(entry)};
    } else if (n == 1) {
      Entry* arr = allocate(2);
      new (arr) Entry{std::move(one_)};
      one_.~Entry();
      new (arr + 1) Entry{std::move(entry)};
      small_ = arr;
    } else if (n < kIndexedMin) {
      if (n == std::bit_ceil(n)) regrow(n, n * 2);
      new (small_ + n) Entry{std::move(entry)};
    } else {
      if (n == kIndexedMin) to_big(n);
      big_->pos.emplace(key_of(entry), n);
      big_->entries.push_back(std::move(entry));
    }
    ++n;
    return true;
  }

  // Removes the entry of `key`; true when found (and `n` decremented).
  bool erase(std::uint32_t& n, const SubscriberKey& key) noexcept {
    if (n > kIndexedMin) {
      auto it = big_->pos.find(key);
      if (it == big_->pos.end()) return false;
      const std::uint32_t i = it->second;
      big_->pos.erase(it);
      auto& v = big_->entries;
      if (i + 1 != v.size()) {
        v[i] = std::move(v.back());
        big_->pos.find(key_of(v[i]))->second = i;
      }
      v.pop_back();
      if (--n == kIndexedMin) to_small(n);
      return true;
    }
    Entry* e = find(n, key);
    if (e == nullptr) return false;
    if (n == 1) {
      one_.~Entry();
      n = 0;
      return true;
    }
    Entry& last = small_[n - 1];
    if (e != &last) *e = std::move(last);
    last.~Entry();
    if (--n == 1) {  // back inline: frees the array
      Entry* arr = small_;
      new (&one_) Entry{std::move(arr[0])};
      arr[0].~Entry();
      ::operator delete(arr);
    }
    return true;
  }

  void clear(std::uint32_t& n) noexcept {
    if (n == 1) {
      one_.~Entry();
    } else if (n > kIndexedMin) {
      delete big_;
    } else if (n > 1) {
      for (std::uint32_t i = 0; i < n; ++i) small_[i].~Entry();
      ::operator delete(small_);
    }
    n = 0;
  }

 private:
  static constexpr std::uint32_t kIndexedMin = 32;
  struct Big {
    std::vector<Entry> entries;
    std::unordered_map<SubscriberKey, std::uint32_t, KeyHash> pos;  // key -> index in entries
  };

  // Unsized: the array may be larger than bit_ceil(n) after erasures, and that is fine.
  static Entry* allocate(std::uint32_t cap) {
    return static_cast<Entry*>(::operator new(sizeof(Entry) * cap));
  }

  void regrow(std::uint32_t n, std::uint32_t cap) {
    Entry* fresh = allocate(cap);
    for (std::uint32_t i = 0; i < n; ++i) {
      new (fresh + i) Entry{std::move(small_[i])};
      small_[i].~Entry();
    }
    ::operator delete(small_);
    small_ = fresh;
  }

  void to_big(std::uint32_t n) {
    auto big = std::make_unique<Big>();
    big->entries.reserve(n * 2u);
    big->pos.reserve(n * 2u);
    for (std::uint32_t i = 0; i < n; ++i) {
      big->pos.emplace(key_of(small_[i]), i);
      big->entries.push_back(std::move(small_[i]));
      small_[i].~Entry();
    }
    ::operator delete(small_);
    big_ = big.release();
  }

  // Back to an array when a big list falls to kIndexedMin entries (erase is noexcept, and
  // OOM is fatal anyway: STYLE.md 3).
  void to_small(std::uint32_t n) noexcept {
    auto* arr = static_cast<Entry*>(::operator new(sizeof(Entry) * n, std::nothrow));
    if (arr == nullptr) std::abort();  // OOM is fatal (STYLE.md 3)
    Big* big = big_;
    for (std::uint32_t i = 0; i < n; ++i) new (arr + i) Entry{std::move(big->entries[i])};
    delete big;
    small_ = arr;
  }

  union {
    Entry one_;     // n == 1
    Entry* small_;  // 2 <= n <= kIndexedMin
    Big* big_;      // n > kIndexedMin
  };
};
static_assert(sizeof(SubList<Entry>) == 24);

enum NodeFlag : std::uint8_t {
  kHasPlus = 1,    // a child keyed "+" exists
  kHasHash = 2,    // a child keyed "#" exists
  kHasShared = 4,  // shared groups live in Impl::shared_ under this node
};

// One trie level. Allocated with its key bytes right behind it (see make_keyed).
struct Node {
  Node() = default;
  ~Node() { subs.clear(nsubs); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  ChildSet<Node, TrieArena> children;  // released by free_node (the arena is the index's)
  SubList<Entry> subs;
  std::uint32_t nsubs = 0;    // entries in subs
  std::uint16_t key_len = 0;  // a level is at most 65,535 bytes: topics are
  std::uint8_t flags = 0;
  char key_head[1];  // the key starts here and runs past the end of the struct

  std::string_view key() const noexcept { return {key_head, key_len}; }
  std::span<const Entry> entries() const noexcept { return subs.view(nsubs); }
  bool unused() const noexcept {
    return children.empty() && nsubs == 0 && (flags & kHasShared) == 0;
  }
};
static_assert(sizeof(Node) == 48, "16 children + 24 subscribers + count, length, flags");
static_assert(std::is_standard_layout_v<Node>);

// The subscribers of one filter without wildcards, keyed by the whole filter (at most 65,535
// bytes: it is an MQTT string). Allocated like a Node, with the filter right behind it.
struct ExactNode {
  ExactNode() = default;
  ~ExactNode() { subs.clear(nsubs); }
  ExactNode(const ExactNode&) = delete;
  ExactNode& operator=(const ExactNode&) = delete;

  SubList<Entry> subs;
  std::uint32_t nsubs = 0;
  std::uint16_t key_len = 0;
  char key_head[2];

  std::string_view key() const noexcept { return {key_head, key_len}; }
  std::span<const Entry> entries() const noexcept { return subs.view(nsubs); }
};
static_assert(sizeof(ExactNode) == 32, "24 subscribers + count + length");
static_assert(std::is_standard_layout_v<ExactNode>);

// Bytes of a T (Node or ExactNode) whose key is `key_len` long.
template <typename T>
std::size_t node_bytes(std::size_t key_len) noexcept {
  return std::max(sizeof(T), offsetof(T, key_head) + key_len);
}

template <typename T>
T* make_keyed(TrieArena& arena, std::string_view key) {
  void* mem = arena.allocate(node_bytes<T>(key.size()));
  T* n = new (mem) T();
  n->key_len = static_cast<std::uint16_t>(key.size());
  if (!key.empty()) std::memcpy(static_cast<char*>(mem) + offsetof(T, key_head), key.data(), key.size());
  return n;
}

void free_node(TrieArena& arena, Node* n) noexcept {
  const std::size_t bytes = node_bytes<Node>(n->key_len);
  n->children.release(arena);
  n->~Node();
  arena.deallocate(n, bytes);
}

void free_node(TrieArena& arena, ExactNode* n) noexcept {
  const std::size_t bytes = node_bytes<ExactNode>(n->key_len);
  n->~ExactNode();
  arena.deallocate(n, bytes);
}

std::uint8_t wildcard_flag(std::string_view key) noexcept {
  if (key == "+") return kHasPlus;
  if (key == "#") return kHasHash;
  return 0;
}

struct SharedGroup {
  SharedGroup(std::string_view n, std::string_view filter)
      : name(n), tag(shared_subscription_tag(n, filter)) {}
  ~SharedGroup() { members.clear(size); }
  SharedGroup(const SharedGroup&) = delete;
  SharedGroup& operator=(const SharedGroup&) = delete;

  std::span<const MemberEntry> entries() const noexcept { return members.view(size); }

  std::string name;
  std::uint32_t tag;
  SubList<MemberEntry> members;
  std::uint32_t size = 0;                      // entries in members
  mutable std::atomic<std::uint32_t> next{0};  // round-robin cursor, bumped by readers
};
using SharedGroups = std::vector<std::unique_ptr<SharedGroup>>;

// The filters without wildcards, found by the hash of the whole filter (see the file comment).
// Nodes and tables come from the index's arena, passed to every call that allocates or frees.
class ExactFilters {
 public:
  ExactFilters() : shards_(std::make_unique<Shard[]>(kShards)) {}

  ExactNode* find(std::string_view filter) const noexcept {
    const std::uint64_t hash = level_hash(filter);
    return shard(hash).find(filter, hash);
  }

  ExactNode& find_or_add(std::string_view filter, TrieArena& arena) {
    const std::uint64_t hash = level_hash(filter);
    Shard& s = shard(hash);
    if (ExactNode* n = s.find(filter, hash)) return *n;
    ExactNode* n = make_keyed<ExactNode>(arena, filter);
    s.insert(n, hash, arena);
    return *n;
  }

  // Removes and frees `n`. REQUIRES: `n` is in the set.
  void erase(ExactNode* n, TrieArena& arena) noexcept {
    shard(level_hash(n->key())).erase(n->key(), arena);
    free_node(arena, n);
  }

  // Hands every node to `f` (which frees it) and empties the set.
  template <typename F>
  void release(TrieArena& arena, F&& f) noexcept {
    for (unsigned i = 0; i < kShards; ++i) {
      shards_[i].for_each(f);
      shards_[i].release(arena);
    }
  }

 private:
  using Shard = ChildSet<ExactNode, TrieArena>;
  static constexpr unsigned kShards = 4096;  // 64 KiB of empty sets; 2,500 filters each at 10M

  // Bits the shard's own table does not use for its slot (low bits) or tag (top 16).
  Shard& shard(std::uint64_t hash) const noexcept { return shards_[(hash >> 32) & (kShards - 1)]; }

  std::unique_ptr<Shard[]> shards_;
};

}  // namespace

struct TopicIndex::Impl {
  // One per reader; its own cache line so readers never share a line they write.
  struct alignas(64) Slot {
    std::mutex mu;
    std::vector<std::pair<const Node*, std::size_t>> stack;  // match() scratch, kept warm
    std::vector<Level> levels;                               // match() scratch
    std::uint64_t rng = 0;                                   // xorshift state for Random
  };

  Impl(unsigned reader_slots, SharedPolicy p)
      : slot_count_(reader_slots == 0 ? 1 : reader_slots),
        slots_(std::make_unique<Slot[]>(slot_count_)),
        policy_(p),
        root_(make_keyed<Node>(arena_, {})) {
    for (unsigned i = 0; i < slot_count_; ++i) {
      slots_[i].rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ reinterpret_cast<std::uintptr_t>(this);
      if (slots_[i].rng == 0) slots_[i].rng = 1;
    }
  }

  ~Impl() {
    std::vector<Node*> todo{root_};
    while (!todo.empty()) {  // iterative: a filter may be thousands of levels deep
      Node* n = todo.back();
      todo.pop_back();
      n->children.for_each([&](Node* c) { todo.push_back(c); });
      for (const Entry& e : n->entries()) let_go(e.ptr());
      free_node(arena_, n);
    }
    exact_.release(arena_, [&](ExactNode* n) {
      for (const Entry& e : n->entries()) let_go(e.ptr());
      free_node(arena_, n);
    });
  }

  // Writers lock every slot in index order; that also serialises writers with each other.
  class WriteLock {
   public:
    explicit WriteLock(Impl& impl) : impl_(impl) {
      for (unsigned i = 0; i < impl_.slot_count_; ++i) impl_.slots_[i].mu.lock();
    }
    ~WriteLock() {
      for (unsigned i = impl_.slot_count_; i-- > 0;) impl_.slots_[i].mu.unlock();
    }
    WriteLock(const WriteLock&) = delete;
    WriteLock& operator=(const WriteLock&) = delete;

   private:
    Impl& impl_;
  };

  // The node of `filter` taken literally ('+' and '#' are plain keys); null if absent.
  const Node* find_node(std::string_view filter) const noexcept {
    const Node* n = root_;
    for (std::size_t pos = 0; pos != kEnd && n != nullptr;) {
      auto [level, next] = level_at(filter, pos);
      n = n->children.find(level);
      pos = next;
    }
    return n;
  }

  SharedGroup* find_group(const Node* n, std::string_view name) const noexcept {
    if ((n->flags & kHasShared) == 0) return nullptr;
    auto it = shared_.find(n);
    if (it == shared_.end()) return nullptr;
    for (const auto& g : it->second) {
      if (g->name == name) return g.get();
    }
    return nullptr;
  }

  // One member of `g` other than `exclude`; null when there is none.
  const MemberEntry* pick(const SharedGroup& g, Slot& slot,
                          const SubscriberKey* exclude) const noexcept {
    const auto members = g.entries();
    const std::size_t n = members.size();
    if (n == 0) return nullptr;
    std::uint64_t start;
    if (policy_ == SharedPolicy::RoundRobin) {
      start = g.next.fetch_add(1, std::memory_order_relaxed);
    } else {
      std::uint64_t x = slot.rng;  // xorshift64: a few cycles, and the slot is ours alone
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      slot.rng = x;
      start = x >> 11;
    }
    start %= n;
    // A connected member keeping up first; else a connected one that does not (Congested: it
    // holds the publisher only when every connected member is), else any (its queue keeps it).
    const MemberEntry* behind = nullptr;
    const MemberEntry* offline = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      const MemberEntry& e = members[(start + i) % n];
      if (exclude != nullptr && e.subscriber->key == *exclude) continue;
      if (e.subscriber->connected.load(std::memory_order_relaxed)) {
        if (e.subscriber->flow.load(std::memory_order_relaxed) == 0) return &e;
        if (behind == nullptr) behind = &e;
      } else if (offline == nullptr) {
        offline = &e;
      }
    }
    return behind != nullptr ? behind : offline;
  }

  // Appends a subscriber list's matches; returns how many sources they came from (0 or 1).
  // with_subscribers: every match carries its Subscriber; else only those whose flow is not
  // Open, read only while some subscriber is not Open (`any_held`).
  static unsigned emit_plain(std::span<const Entry> entries, bool with_subscribers, bool any_held,
                             std::vector<Match>& out) {
    out.reserve(out.size() + entries.size());
    for (const Entry& e : entries) {
      Match& m = out.emplace_back(Match{e.key(), e.options, false, 0, nullptr});
      // A receiver that is not Open (back-pressure: its flow is read here, under the lock that
      // keeps it alive) always comes with its Subscriber, so the router can wait for it.
      if (with_subscribers || (any_held && e.ptr()->flow.load(std::memory_order_relaxed) != 0))
        m.subscriber = SubscriberPtr(e.ptr());
    }
    return entries.empty() ? 0 : 1;
  }

  // Appends the node's matches; returns how many sources they came from (its plain list
  // counts one, a shared group two: a group's pick may repeat a session).
  unsigned emit(const Node& n, Slot& slot, bool with_subscribers, bool any_held,
                std::vector<Match>& out) const {
    unsigned sources = emit_plain(n.entries(), with_subscribers, any_held, out);
    if ((n.flags & kHasShared) == 0) return sources;
    auto it = shared_.find(&n);
    if (it == shared_.end()) return sources;
    for (const auto& g : it->second) {
      if (const MemberEntry* e = pick(*g, slot, nullptr)) {
        out.push_back(Match{e->subscriber->key, e->options, true, g->tag, e->subscriber});
        sources += 2;
      }
    }
    return sources;
  }

  // Adds or replaces `subscriber`'s entry in a plain list; true when added.
  bool add_plain(SubList<Entry>& subs, std::uint32_t& n, const SubscriberPtr& subscriber,
                 const SubscriptionOptions& options) {
    const Entry* old = subs.find(n, subscriber->key);
    Subscriber* replaced = old != nullptr ? old->ptr() : nullptr;
    hold(subscriber);
    const bool added = subs.upsert(n, Entry{subscriber.get(), options});
    // A recreated Subscriber for the same session replaces the old one in this entry.
    if (replaced != nullptr) let_go(replaced);
    return added;
  }

  // Removes `key`'s entry from a plain list; true when it was there.
  bool remove_plain(SubList<Entry>& subs, std::uint32_t& n, const SubscriberKey& key) noexcept {
    const Entry* e = subs.find(n, key);
    if (e == nullptr) return false;
    Subscriber* s = e->ptr();
    subs.erase(n, key);
    let_go(s);
    return true;
  }

  // Removes the trailing nodes of `nodes` (root first) that hold nothing any more.
  void prune(const std::vector<Node*>& nodes) noexcept {
    for (std::size_t i = nodes.size() - 1; i > 0; --i) {
      Node* n = nodes[i];
      if (!n->unused()) return;
      Node* parent = nodes[i - 1];
      parent->children.erase(n->key(), arena_);
      parent->flags = static_cast<std::uint8_t>(parent->flags & ~wildcard_flag(n->key()));
      free_node(arena_, n);
    }
  }

  const unsigned slot_count_;
  const std::unique_ptr<Slot[]> slots_;
  const SharedPolicy policy_;
  TrieArena arena_;  // nodes and child tables; written under every slot's lock
  Node* const root_;  // wildcard and shared filters
  ExactFilters exact_;  // the rest; written under every slot's lock
  std::unordered_map<const Node*, SharedGroups> shared_;  // written under every slot's lock
  // The index holds one reference to each Subscriber that its plain entries name.
  static void hold(const SubscriberPtr& s) {
    if (s->index_entries_++ == 0) s->retain();
  }
  static void let_go(Subscriber* s) noexcept {
    if (--s->index_entries_ == 0) s->release();  // the index's reference: may free `s`
  }
  std::vector<Node*> path_;                               // writers' scratch
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint32_t> not_open_{0};  // subscribers whose flow is not Open (set_flow)
};

TopicIndex::TopicIndex(unsigned reader_slots, SharedPolicy policy)
    : impl_(std::make_unique<Impl>(reader_slots, policy)) {}

TopicIndex::~TopicIndex() = default;

std::uint32_t shared_subscription_tag(std::string_view group, std::string_view filter) noexcept {
  // The index's hash of each part, combined and folded to 32 bits; 0 stays "not known".
  const std::uint64_t h = level_hash(group) * 0x9E3779B97F4A7C15ull ^ level_hash(filter);
  const auto tag = static_cast<std::uint32_t>(h ^ (h >> 32));
  return tag == 0 ? 1 : tag;
}

bool TopicIndex::subscribe(const SubscriberPtr& subscriber, std::string_view filter,
                           const SubscriptionOptions& options) {
  // An invalid filter (a caller's bug) changes nothing rather than corrupting the trie.
  if (!subscriber || !packable(*subscriber) || !protocol::valid_topic_filter(filter)) return false;
  std::string_view group;
  if (auto shared = protocol::parse_shared_filter(filter)) {
    group = shared->group;
    filter = shared->filter;
  }
  Impl::WriteLock lock(*impl_);
  if (group.empty() && !protocol::has_wildcard(filter)) {
    ExactNode& e = impl_->exact_.find_or_add(filter, impl_->arena_);
    const bool added = impl_->add_plain(e.subs, e.nsubs, subscriber, options);
    if (added) impl_->count_.fetch_add(1, std::memory_order_relaxed);
    return added;
  }
  Node* n = impl_->root_;
  for (std::size_t pos = 0; pos != kEnd;) {
    auto [level, next] = level_at(filter, pos);
    const std::uint64_t hash = level_hash(level);
    Node* child = n->children.find(level, hash);
    if (child == nullptr) {
      child = make_keyed<Node>(impl_->arena_, level);
      n->children.insert(child, hash, impl_->arena_);
      n->flags = static_cast<std::uint8_t>(n->flags | wildcard_flag(level));
    }
    n = child;
    pos = next;
  }
  bool added;
  if (group.empty()) {
    added = impl_->add_plain(n->subs, n->nsubs, subscriber, options);
  } else {
    SharedGroup* g = impl_->find_group(n, group);
    if (g == nullptr) {
      auto& groups = impl_->shared_[n];
      groups.push_back(std::make_unique<SharedGroup>(group, filter));
      g = groups.back().get();
      n->flags |= kHasShared;
    }
    added = g->members.upsert(g->size, MemberEntry{subscriber, options});
  }
  if (added) impl_->count_.fetch_add(1, std::memory_order_relaxed);
  return added;
}

bool TopicIndex::unsubscribe(const SubscriberKey& key, std::string_view filter) {
  std::string_view group;
  if (auto shared = protocol::parse_shared_filter(filter)) {
    group = shared->group;
    filter = shared->filter;
  } else if (!protocol::valid_topic_filter(filter)) {
    return false;
  }
  Impl::WriteLock lock(*impl_);
  if (group.empty() && !protocol::has_wildcard(filter)) {
    ExactNode* e = impl_->exact_.find(filter);
    if (e == nullptr || !impl_->remove_plain(e->subs, e->nsubs, key)) return false;
    if (e->nsubs == 0) impl_->exact_.erase(e, impl_->arena_);
    impl_->count_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  auto& path = impl_->path_;
  path.clear();
  Node* n = impl_->root_;
  path.push_back(n);
  for (std::size_t pos = 0; pos != kEnd;) {
    auto [level, next] = level_at(filter, pos);
    n = n->children.find(level);
    if (n == nullptr) return false;
    path.push_back(n);
    pos = next;
  }
  if (group.empty()) {
    if (!impl_->remove_plain(n->subs, n->nsubs, key)) return false;
  } else {
    SharedGroup* g = impl_->find_group(n, group);
    if (g == nullptr || !g->members.erase(g->size, key)) return false;
    if (g->size == 0) {
      auto it = impl_->shared_.find(n);
      auto& groups = it->second;
      std::erase_if(groups, [g](const auto& p) { return p.get() == g; });
      if (groups.empty()) {
        impl_->shared_.erase(it);
        n->flags = static_cast<std::uint8_t>(n->flags & ~kHasShared);
      }
    }
  }
  impl_->count_.fetch_sub(1, std::memory_order_relaxed);
  impl_->prune(path);
  return true;
}

bool TopicIndex::match(unsigned slot, std::string_view topic, std::vector<Match>& out,
                       bool with_subscribers) const {
  Impl& impl = *impl_;
  Impl::Slot& s = impl.slots_[slot];
  std::lock_guard<std::mutex> lock(s.mu);
  const bool any_held = impl.not_open_.load(std::memory_order_relaxed) != 0;
  unsigned sources = 0;
  if (const ExactNode* e = impl.exact_.find(topic)) {
    sources += Impl::emit_plain(e->entries(), with_subscribers, any_held, out);
  }
  if (impl.root_->children.empty()) return sources <= 1;  // no wildcard or shared filter
  // Split and hash the topic's levels once: a '+' branch looks the same level up again.
  auto& levels = s.levels;
  levels.clear();
  for (std::size_t pos = 0; pos != kEnd;) {
    auto [level, next] = level_at(topic, pos);
    levels.push_back(Level{static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(level.size()),
                           level_hash(level)});
    pos = next;
  }
  const std::size_t depth = levels.size();
  // Wildcards at the first level never match '$' names [MQTT-4.7.2-1].
  const bool dollar = !topic.empty() && topic.front() == '$';
  auto& stack = s.stack;  // depth-first, iterative: topics may have thousands of levels
  stack.clear();
  stack.emplace_back(impl.root_, 0);
  while (!stack.empty()) {
    auto [n, i] = stack.back();
    stack.pop_back();
    if (i == depth) {
      sources += impl.emit(*n, s, with_subscribers, any_held, out);
      // "sport/#" also matches "sport".
      if ((n->flags & kHasHash) != 0) {
        sources += impl.emit(*n->children.find("#", kHashHash), s, with_subscribers, any_held, out);
      }
      continue;
    }
    const Level& l = levels[i];
    const std::string_view level = topic.substr(l.pos, l.len);
    const bool wild_ok = !(dollar && n == impl.root_);
    if (wild_ok && (n->flags & kHasHash) != 0) {
      sources += impl.emit(*n->children.find("#", kHashHash), s, with_subscribers, any_held, out);
    }
    if (wild_ok && (n->flags & kHasPlus) != 0) stack.emplace_back(n->children.find("+", kPlusHash), i + 1);
    // A topic name has no wildcards; if one slipped through, don't count its node twice.
    if (is_wildcard(level)) continue;
    if (const Node* c = n->children.find(level, l.hash)) stack.emplace_back(c, i + 1);
  }
  return sources <= 1;
}

bool TopicIndex::pick_shared(unsigned slot, std::string_view group, std::string_view filter,
                             const SubscriberKey& exclude, Match& out) const {
  Impl& impl = *impl_;
  Impl::Slot& s = impl.slots_[slot];
  std::lock_guard<std::mutex> lock(s.mu);
  const Node* n = impl.find_node(filter);
  if (n == nullptr) return false;
  const SharedGroup* g = impl.find_group(n, group);
  if (g == nullptr) return false;
  const MemberEntry* e = impl.pick(*g, s, &exclude);
  if (e == nullptr) return false;
  out = Match{e->subscriber->key, e->options, true, g->tag, e->subscriber};
  return true;
}

std::uint64_t TopicIndex::subscription_count() const noexcept {
  return impl_->count_.load(std::memory_order_relaxed);
}

void TopicIndex::set_flow(Subscriber& subscriber, std::uint8_t state) noexcept {
  const std::uint8_t old = subscriber.flow.load(std::memory_order_relaxed);  // only we write it
  // Counted before it becomes visible, uncounted after it is Open again.
  if (old == 0 && state != 0) impl_->not_open_.fetch_add(1);
  subscriber.flow.store(state);
  if (old != 0 && state == 0) impl_->not_open_.fetch_sub(1);
}

}  // namespace broker::core
