#pragma once
// LazyOrdered<C>: an ordered std::map or std::set that costs one pointer while empty. An empty
// libstdc++ std::map/std::set is 48 bytes inline; a session's inbound QoS 2 ids are empty
// almost all the time, and a broker holds millions of sessions. The
// container is made on the first insert and freed when the last element goes.
//
// While empty, begin()/end()/find() return iterators of one shared, never-modified empty
// container, so loops that erase as they go (`it = erase(it)`) end correctly when the erase
// frees the storage. An erase that empties the container invalidates every iterator, as the
// erased one already was.
//
// Thread safety: like the standard containers (one owner; the shared empty one is only read).
#include <cstddef>
#include <memory>
#include <utility>

namespace broker::core {

template <typename C>
class LazyOrdered {
 public:
  using iterator = typename C::iterator;
  using const_iterator = typename C::const_iterator;

  bool empty() const noexcept { return !items_; }  // items_ is never an empty container
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }

  iterator begin() noexcept { return items_ ? items_->begin() : none().begin(); }
  iterator end() noexcept { return items_ ? items_->end() : none().end(); }
  const_iterator begin() const noexcept { return items_ ? items_->cbegin() : none().cbegin(); }
  const_iterator end() const noexcept { return items_ ? items_->cend() : none().cend(); }

  template <typename K>
  iterator find(const K& key) {
    return items_ ? items_->find(key) : none().end();
  }
  template <typename K>
  bool contains(const K& key) const {
    return items_ && items_->contains(key);
  }

  template <typename... Args>
  std::pair<iterator, bool> emplace(Args&&... args) {
    if (items_) return items_->emplace(std::forward<Args>(args)...);
    // Adopted only once it holds the element, so a throwing constructor leaves us empty.
    auto fresh = std::make_unique<C>();
    auto result = fresh->emplace(std::forward<Args>(args)...);
    items_ = std::move(fresh);
    return result;
  }
  template <typename V>
  std::pair<iterator, bool> insert(V&& value) {
    return emplace(std::forward<V>(value));
  }

  // REQUIRES: `it` is a dereferenceable iterator of this container.
  iterator erase(iterator it) {
    auto next = items_->erase(it);
    if (!items_->empty()) return next;
    items_.reset();
    return none().end();
  }
  // Returns how many elements were removed (0 or 1).
  template <typename K>
  std::size_t erase(const K& key) {
    if (!items_) return 0;
    const std::size_t n = items_->erase(key);
    if (items_->empty()) items_.reset();
    return n;
  }
  void clear() noexcept { items_.reset(); }

 private:
  static C& none() noexcept {
    static C empty;  // never modified: shared by every empty LazyOrdered<C>, on every thread
    return empty;
  }
  std::unique_ptr<C> items_;
};

}  // namespace broker::core
