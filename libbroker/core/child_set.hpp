#pragma once
// ChildSet: the children of one topic-trie node, found by level name. Shared by the topic
// index and the retained store.
//
// Design: in a broker's tries most nodes have zero or one child, some have a handful and a few
// (a per-device level) have millions. So one child is kept inline (no allocation), up to
// kLinearMax children sit in an unsorted array searched linearly (a few compares of short keys
// beat hashing), and past that in an open-addressing table of Node* with linear probing (8
// bytes a slot, load at most 3/4). Keys are not stored here: each node holds its own, which
// `Node::key()` returns as a std::string_view.
//
// Thread safety: none; the owning trie's lock guards it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <string_view>

namespace broker::core {

template <typename Node>
class ChildSet {
 public:
  ChildSet() noexcept : one_(nullptr) {}
  ~ChildSet() { release(); }
  ChildSet(const ChildSet&) = delete;
  ChildSet& operator=(const ChildSet&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  Node* find(std::string_view key) const noexcept {
    if (cap_ == 0) return size_ == 1 && one_->key() == key ? one_ : nullptr;
    if (cap_ <= kLinearMax) {
      for (std::uint32_t i = 0; i < size_; ++i) {
        if (many_[i]->key() == key) return many_[i];
      }
      return nullptr;
    }
    const std::size_t mask = cap_ - 1;
    for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      Node* n = many_[i];
      if (n == nullptr || n->key() == key) return n;
    }
  }

  // REQUIRES: no child has child->key().
  void insert(Node* child) {
    if (cap_ == 0) {
      if (size_ == 0) {
        one_ = child;
        size_ = 1;
        return;
      }
      Node** arr = allocate(2);
      arr[0] = one_;
      arr[1] = child;
      many_ = arr;
      cap_ = 2;
      size_ = 2;
      return;
    }
    if (cap_ <= kLinearMax) {
      if (size_ < cap_) {
        many_[size_++] = child;
        return;
      }
      if (cap_ < kLinearMax) {
        Node** arr = allocate(cap_ * 2);
        std::copy(many_, many_ + size_, arr);
        deallocate(many_);
        many_ = arr;
        cap_ *= 2;
        many_[size_++] = child;
        return;
      }
      rebuild(kTableMin);
    } else if ((size_ + 1) * 4 > cap_ * 3) {
      rebuild(cap_ * 2);
    }
    place(child);
    ++size_;
  }

  // Removes the child with `key`; returns it (still allocated), or nullptr if none.
  Node* erase(std::string_view key) noexcept {
    if (cap_ == 0) {
      if (size_ == 1 && one_->key() == key) {
        Node* n = one_;
        one_ = nullptr;
        size_ = 0;
        return n;
      }
      return nullptr;
    }
    if (cap_ <= kLinearMax) return erase_linear(key);
    return erase_table(key);
  }

  template <typename F>
  void for_each(F&& f) const {
    if (cap_ == 0) {
      if (size_ == 1) f(one_);
      return;
    }
    const std::uint32_t n = cap_ <= kLinearMax ? size_ : cap_;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (many_[i] != nullptr) f(many_[i]);
    }
  }

  // Forgets every child without freeing them (the owner frees the nodes).
  void release() noexcept {
    if (cap_ != 0) deallocate(many_);
    one_ = nullptr;
    size_ = 0;
    cap_ = 0;
  }

 private:
  static constexpr std::uint32_t kLinearMax = 8;
  static constexpr std::uint32_t kTableMin = 16;  // a power of two > kLinearMax

  static std::size_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }
  static Node** allocate(std::uint32_t n) {
    return static_cast<Node**>(::operator new(sizeof(Node*) * n));
  }
  static void deallocate(Node** p) noexcept { ::operator delete(p); }

  // Table mode: puts `child` in its probe sequence's first free slot. REQUIRES: a free slot.
  void place(Node* child) noexcept {
    const std::size_t mask = cap_ - 1;
    std::size_t i = hash(child->key()) & mask;
    while (many_[i] != nullptr) i = (i + 1) & mask;
    many_[i] = child;
  }

  // Moves every child into `fresh`: an array (new_cap <= kLinearMax) or a table of new_cap
  // slots.
  void adopt(Node** fresh, std::uint32_t new_cap) noexcept {
    Node** old = many_;
    const std::uint32_t old_n = cap_ <= kLinearMax ? size_ : cap_;
    many_ = fresh;
    std::fill(many_, many_ + new_cap, nullptr);
    cap_ = new_cap;
    std::uint32_t k = 0;
    for (std::uint32_t i = 0; i < old_n; ++i) {
      if (old[i] == nullptr) continue;
      if (new_cap <= kLinearMax) {
        many_[k++] = old[i];
      } else {
        place(old[i]);
      }
    }
    deallocate(old);
  }
  void rebuild(std::uint32_t new_cap) { adopt(allocate(new_cap), new_cap); }
  // Shrinking is an optimisation: if the allocation fails, keep the larger table.
  void shrink(std::uint32_t new_cap) noexcept {
    auto* fresh = static_cast<Node**>(::operator new(sizeof(Node*) * new_cap, std::nothrow));
    if (fresh != nullptr) adopt(fresh, new_cap);
  }

  Node* erase_linear(std::string_view key) noexcept {
    for (std::uint32_t i = 0; i < size_; ++i) {
      Node* n = many_[i];
      if (n->key() != key) continue;
      many_[i] = many_[--size_];
      many_[size_] = nullptr;
      if (size_ == 1) {  // back to inline: no allocation for the common single child
        Node* last = many_[0];
        deallocate(many_);
        one_ = last;
        cap_ = 0;
      }
      return n;
    }
    return nullptr;
  }

  Node* erase_table(std::string_view key) noexcept {
    const std::size_t mask = cap_ - 1;
    std::size_t hole = hash(key) & mask;
    for (;; hole = (hole + 1) & mask) {
      if (many_[hole] == nullptr) return nullptr;
      if (many_[hole]->key() == key) break;
    }
    Node* removed = many_[hole];
    // Backward-shift deletion: no tombstones, so lookups stay short after many erasures.
    for (std::size_t j = (hole + 1) & mask; many_[j] != nullptr; j = (j + 1) & mask) {
      const std::size_t home = hash(many_[j]->key()) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        many_[hole] = many_[j];
        hole = j;
      }
    }
    many_[hole] = nullptr;
    --size_;
    if (size_ <= kLinearMax / 2) {
      shrink(kLinearMax);
    } else if (cap_ > kTableMin && size_ * 8 < cap_) {
      shrink(cap_ / 2);
    }
    return removed;
  }

  union {
    Node* one_;    // cap_ == 0: the only child, or null
    Node** many_;  // cap_ <= kLinearMax: packed array of size_; else a table of cap_ slots
  };
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;
};

}  // namespace broker::core
