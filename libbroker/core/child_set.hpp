#pragma once
// ChildSet: the children of one topic-trie node, found by level name. Shared by the topic
// index and the retained store.
//
// Design: in a broker's tries most nodes have zero or one child, some have a handful and a few
// (a per-device level) have millions. So one child is kept inline (no allocation), up to
// kLinearMax children sit in an unsorted array searched linearly, and past that in an
// open-addressing table with linear probing (8 bytes a slot, load at most 3/4). Keys are not
// stored here: each node holds its own, which `Node::key()` returns as a std::string_view.
//
// At millions of subscriptions every node visited is a cache miss, so a lookup must not read
// a child just to learn that its key differs. Each stored pointer carries the top 16 bits of
// its key's hash in its unused high bits (user-space addresses on x86-64 and arm64 Linux are
// below 2^48): a lookup reads a child only when the tag agrees, which is one false read in
// 65,536. Callers that look the same level up in several nodes (a topic walk through '+'
// branches) hash it once with level_hash() and pass the hash in.
//
// Arrays and tables come from `Alloc` (allocate(bytes) -> block or null, deallocate(p, bytes)):
// the global heap by default; the topic index passes its TrieArena to every call that may
// allocate or free, so a set costs no allocator pointer. An owner with such an allocator must
// release() the set before destroying it.
//
// Thread safety: none; the owning trie's lock guards it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>

namespace broker::core {

// ChildSet's default allocator: the global heap.
struct HeapBlocks {
  void* allocate(std::size_t bytes) noexcept { return ::operator new(bytes, std::nothrow); }
  void deallocate(void* p, std::size_t) noexcept { ::operator delete(p); }
};

// A fast 64-bit hash of one topic level (levels are short: a few multiplies, no table).
inline std::uint64_t level_hash(std::string_view s) noexcept {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * kMul);
  const char* p = s.data();
  std::size_t n = s.size();
  auto mix = [](std::uint64_t x) noexcept {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
  };
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix((h ^ w) * kMul);
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix((h ^ w) * kMul);
  }
  return mix(h ^ (h >> 29));
}

template <typename Node, typename Alloc = HeapBlocks>
class ChildSet {
 public:
  ChildSet() noexcept = default;
  ~ChildSet() {
    if constexpr (std::is_empty_v<Alloc>) release();
  }
  ChildSet(const ChildSet&) = delete;
  ChildSet& operator=(const ChildSet&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  Node* find(std::string_view key) const noexcept { return find(key, level_hash(key)); }

  // REQUIRES: hash == level_hash(key).
  Node* find(std::string_view key, std::uint64_t hash) const noexcept {
    const std::uintptr_t tag = tag_of(hash);
    if (cap_ == 0) return size_ == 1 ? check(one_, tag, key) : nullptr;
    if (cap_ <= kLinearMax) {
      for (std::uint32_t i = 0; i < size_; ++i) {
        if (Node* n = check(many_[i], tag, key)) return n;
      }
      return nullptr;
    }
    const std::size_t mask = cap_ - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const std::uintptr_t slot = many_[i];
      if (slot == 0) return nullptr;
      if (Node* n = check(slot, tag, key)) return n;
    }
  }

  // With a stateless allocator (the heap). REQUIRES: no child has child->key().
  void insert(Node* child) requires std::is_empty_v<Alloc> {
    Alloc a;
    insert(child, level_hash(child->key()), a);
  }
  Node* erase(std::string_view key) noexcept requires std::is_empty_v<Alloc> {
    Alloc a;
    return erase(key, a);
  }
  void release() noexcept requires std::is_empty_v<Alloc> {
    Alloc a;
    release(a);
  }

  // REQUIRES: no child has child->key(); hash == level_hash(child->key()).
  void insert(Node* child, std::uint64_t hash, Alloc& a) {
    const std::uintptr_t slot = tagged(child, hash);
    if (cap_ == 0) {
      if (size_ == 0) {
        one_ = slot;
        size_ = 1;
        return;
      }
      std::uintptr_t* arr = allocate(a, 2);
      arr[0] = one_;
      arr[1] = slot;
      many_ = arr;
      cap_ = 2;
      size_ = 2;
      return;
    }
    if (cap_ <= kLinearMax) {
      if (size_ < cap_) {
        many_[size_++] = slot;
        return;
      }
      if (cap_ < kLinearMax) {
        std::uintptr_t* arr = allocate(a, cap_ * 2);
        std::copy(many_, many_ + size_, arr);
        deallocate(a, many_, cap_);
        many_ = arr;
        cap_ *= 2;
        many_[size_++] = slot;
        return;
      }
      rebuild(a, kTableMin);
    } else if ((size_ + 1) * 4 > cap_ * 3) {
      rebuild(a, cap_ * 2);
    }
    place(slot, hash);
    ++size_;
  }

  // Removes the child with `key`; returns it (still allocated), or nullptr if none.
  Node* erase(std::string_view key, Alloc& a) noexcept {
    const std::uint64_t hash = level_hash(key);
    const std::uintptr_t tag = tag_of(hash);
    if (cap_ == 0) {
      Node* n = size_ == 1 ? check(one_, tag, key) : nullptr;
      if (n != nullptr) {
        one_ = 0;
        size_ = 0;
      }
      return n;
    }
    if (cap_ <= kLinearMax) return erase_linear(key, tag, a);
    return erase_table(key, hash, a);
  }

  template <typename F>
  void for_each(F&& f) const {
    if (cap_ == 0) {
      if (size_ == 1) f(node_of(one_));
      return;
    }
    const std::uint32_t n = cap_ <= kLinearMax ? size_ : cap_;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (many_[i] != 0) f(node_of(many_[i]));
    }
  }

  // Slot positions, for visiting the children a slice at a time: for_each_in(begin, end, f)
  // visits those in slots [begin, end) of slot_count(). A position holds only while the set
  // does not change: an erase, or an insert that grows the set (insert_moves()), may move any.
  std::size_t slot_count() const noexcept { return cap_ == 0 || cap_ <= kLinearMax ? size_ : cap_; }
  template <typename F>
  void for_each_in(std::size_t begin, std::size_t end, F&& f) const {
    end = std::min(end, slot_count());
    if (cap_ == 0) {
      if (begin < end) f(node_of(one_));
      return;
    }
    for (std::size_t i = begin; i < end; ++i) {
      if (many_[i] != 0) f(node_of(many_[i]));
    }
  }
  bool insert_moves() const noexcept {
    if (cap_ == 0) return size_ == 1;
    if (cap_ <= kLinearMax) return size_ == cap_;
    return (size_ + 1) * 4 > cap_ * 3;
  }

  // Forgets every child without freeing them (the owner frees the nodes).
  void release(Alloc& a) noexcept {
    if (cap_ != 0) deallocate(a, many_, cap_);
    one_ = 0;
    size_ = 0;
    cap_ = 0;
  }

 private:
  static constexpr std::uint32_t kLinearMax = 8;
  static constexpr std::uint32_t kTableMin = 16;  // a power of two > kLinearMax
  static constexpr unsigned kTagShift = 48;
  static constexpr std::uintptr_t kPointerMask = (std::uintptr_t{1} << kTagShift) - 1;
  static_assert(sizeof(std::uintptr_t) == 8, "tagged child pointers need a 64-bit address space");

  static std::uintptr_t tag_of(std::uint64_t hash) noexcept {
    return static_cast<std::uintptr_t>(hash >> kTagShift) << kTagShift;
  }
  static std::uintptr_t tagged(Node* child, std::uint64_t hash) noexcept {
    const auto p = reinterpret_cast<std::uintptr_t>(child);
    if ((p & ~kPointerMask) != 0) std::abort();  // an address above 2^48: no room for the tag
    return p | tag_of(hash);
  }
  static Node* node_of(std::uintptr_t slot) noexcept {
    return reinterpret_cast<Node*>(slot & kPointerMask);
  }
  // The slot's node when its tag and then its key agree, else null.
  static Node* check(std::uintptr_t slot, std::uintptr_t tag, std::string_view key) noexcept {
    if ((slot & ~kPointerMask) != tag) return nullptr;
    Node* n = node_of(slot);
    return n->key() == key ? n : nullptr;
  }

  static std::uintptr_t* allocate(Alloc& a, std::uint32_t n) {
    void* p = a.allocate(sizeof(std::uintptr_t) * n);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<std::uintptr_t*>(p);
  }
  static void deallocate(Alloc& a, std::uintptr_t* p, std::uint32_t n) noexcept {
    a.deallocate(p, sizeof(std::uintptr_t) * n);
  }

  // Writers only: the full hash of a stored child (the tag keeps just 16 bits of it).
  static std::uint64_t rehash(std::uintptr_t slot) noexcept {
    return level_hash(node_of(slot)->key());
  }

  // Table mode: puts `slot` in its probe sequence's first free place. REQUIRES: a free place.
  void place(std::uintptr_t slot, std::uint64_t hash) noexcept {
    const std::size_t mask = cap_ - 1;
    std::size_t i = hash & mask;
    while (many_[i] != 0) i = (i + 1) & mask;
    many_[i] = slot;
  }

  // Moves every child into `fresh`: an array (new_cap <= kLinearMax) or a table of new_cap
  // slots.
  void adopt(Alloc& a, std::uintptr_t* fresh, std::uint32_t new_cap) noexcept {
    std::uintptr_t* old = many_;
    const std::uint32_t old_cap = cap_;
    const std::uint32_t old_n = cap_ <= kLinearMax ? size_ : cap_;
    many_ = fresh;
    std::fill(many_, many_ + new_cap, std::uintptr_t{0});
    cap_ = new_cap;
    std::uint32_t k = 0;
    for (std::uint32_t i = 0; i < old_n; ++i) {
      if (old[i] == 0) continue;
      if (new_cap <= kLinearMax) {
        many_[k++] = old[i];
      } else {
        place(old[i], rehash(old[i]));
      }
    }
    deallocate(a, old, old_cap);
  }
  void rebuild(Alloc& a, std::uint32_t new_cap) { adopt(a, allocate(a, new_cap), new_cap); }
  // Shrinking is an optimisation: if the allocation fails, keep the larger table.
  void shrink(Alloc& a, std::uint32_t new_cap) noexcept {
    auto* fresh = static_cast<std::uintptr_t*>(a.allocate(sizeof(std::uintptr_t) * new_cap));
    if (fresh != nullptr) adopt(a, fresh, new_cap);
  }

  Node* erase_linear(std::string_view key, std::uintptr_t tag, Alloc& a) noexcept {
    for (std::uint32_t i = 0; i < size_; ++i) {
      Node* n = check(many_[i], tag, key);
      if (n == nullptr) continue;
      many_[i] = many_[--size_];
      many_[size_] = 0;
      if (size_ == 1) {  // back to inline: no allocation for the common single child
        const std::uintptr_t last = many_[0];
        deallocate(a, many_, cap_);
        one_ = last;
        cap_ = 0;
      }
      return n;
    }
    return nullptr;
  }

  Node* erase_table(std::string_view key, std::uint64_t hash, Alloc& a) noexcept {
    const std::uintptr_t tag = tag_of(hash);
    const std::size_t mask = cap_ - 1;
    std::size_t hole = hash & mask;
    Node* removed = nullptr;
    for (;; hole = (hole + 1) & mask) {
      if (many_[hole] == 0) return nullptr;
      if ((removed = check(many_[hole], tag, key)) != nullptr) break;
    }
    // Backward-shift deletion: no tombstones, so lookups stay short after many erasures.
    for (std::size_t j = (hole + 1) & mask; many_[j] != 0; j = (j + 1) & mask) {
      const std::size_t home = rehash(many_[j]) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        many_[hole] = many_[j];
        hole = j;
      }
    }
    many_[hole] = 0;
    --size_;
    if (size_ <= kLinearMax / 2) {
      shrink(a, kLinearMax);
    } else if (cap_ > kTableMin && size_ * 8 < cap_) {
      shrink(a, cap_ / 2);
    }
    return removed;
  }

  union {
    std::uintptr_t one_ = 0;  // cap_ == 0: the only child (tagged), or 0
    std::uintptr_t* many_;    // cap_ <= kLinearMax: packed array of size_; else a table of cap_
  };
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;
};

}  // namespace broker::core
