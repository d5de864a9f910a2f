#pragma once
// InflightWindow: a session's outbound QoS 1/2 messages awaiting acknowledgement, by packet
// id, in the order they were sent (the order a reconnect resends them in [MQTT-4.6.0-1], also
// across the packet id's wrap from 65,535 to 1).
//
// Design: the window is small (Limits::max_inflight, 64 by default) and clients acknowledge
// mostly in order, so the messages sit in a vector in send order. An acknowledged one is
// marked erased (packet id 0, never a valid id) and the erased ones at the front are skipped
// by a head index; the vector is compacted once erased ones are half of it, wherever they are
// (an oldest message never acknowledged must not let it grow). A lookup scans a packed
// copy of the packet ids from the head (a window of 64 is two cache lines), where the
// acknowledged message usually is. At saturation this costs no allocation per
// message (a std::map paid one node each, freed on the session's worker while other workers
// allocate: lock traffic in the allocator). The window costs one pointer while empty, which it
// is almost always in a broker of a million sessions, and frees its storage when it empties.
//
// Thread safety: none; the session's worker owns it.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

namespace broker::core {

template <typename Message>
class InflightWindow {
 public:
  using value_type = std::pair<std::uint16_t, Message>;  // packet id, message

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = InflightWindow::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = value_type*;
    using reference = value_type&;

    iterator() noexcept = default;
    reference operator*() const noexcept { return *p_; }
    pointer operator->() const noexcept { return p_; }
    iterator& operator++() noexcept {
      p_ = skip_erased(p_ + 1, end_);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const noexcept { return p_ == o.p_; }

   private:
    friend class InflightWindow;
    iterator(value_type* p, value_type* end) noexcept : p_(skip_erased(p, end)), end_(end) {}
    static value_type* skip_erased(value_type* p, value_type* end) noexcept {
      while (p != end && p->first == 0) ++p;
      return p;
    }
    value_type* p_ = nullptr;
    value_type* end_ = nullptr;
  };

  bool empty() const noexcept { return !slots_; }
  std::size_t size() const noexcept { return slots_ ? slots_->live : 0; }

  iterator begin() noexcept { return slots_ ? make(slots_->head) : iterator(); }
  iterator end() noexcept { return slots_ ? make(slots_->items.size()) : iterator(); }

  iterator find(std::uint16_t id) noexcept {
    if (!slots_ || id == 0) return end();
    const auto& ids = slots_->ids;
    for (std::size_t i = slots_->head; i < ids.size(); ++i) {
      if (ids[i] == id) return make(i);
    }
    return end();
  }
  bool contains(std::uint16_t id) noexcept { return find(id) != end(); }

  // Appends `message` as the newest. REQUIRES: id != 0 and !contains(id) (the caller picked
  // a free id, or checked). Invalidates every iterator (the vector may grow).
  iterator emplace(std::uint16_t id, Message&& message) {
    if (!slots_) slots_ = std::make_unique<Slots>();
    slots_->items.emplace_back(id, std::move(message));
    slots_->ids.push_back(id);
    ++slots_->live;
    return make(slots_->items.size() - 1);
  }

  // Returns the iterator after `it`. REQUIRES: `it` is dereferenceable. Invalidates every
  // iterator when the window empties or compacts, as the erased one already was.
  iterator erase(iterator it) {
    Slots& s = *slots_;
    const std::size_t i = static_cast<std::size_t>(it.p_ - s.items.data());
    s.items[i].first = 0;
    s.ids[i] = 0;
    s.items[i].second = Message{};  // let the message go now, not at compaction
    if (--s.live == 0) {
      slots_.reset();
      return iterator();
    }
    if (i == s.head) {
      while (s.ids[s.head] == 0) ++s.head;  // a live one follows: live > 0
    }
    std::size_t next = i + 1;
    if (s.items.size() >= 2 * s.live) next = compact(next);
    return make(next);
  }

  void clear() noexcept { slots_.reset(); }

 private:
  struct Slots {
    std::vector<value_type> items;    // send order; first == 0: erased
    std::vector<std::uint16_t> ids;   // ids[i] == items[i].first, packed for lookups
    std::size_t head = 0;           // items before it are all erased
    std::size_t live = 0;           // items not erased
  };

  // Removes the erased items, keeping the order; returns where item `i` (or the first live
  // one after it) went.
  std::size_t compact(std::size_t i) {
    Slots& s = *slots_;
    std::size_t kept = 0;
    std::size_t moved_i = 0;
    for (std::size_t r = 0; r < s.items.size(); ++r) {
      if (r == i) moved_i = kept;
      if (s.ids[r] == 0) continue;
      if (kept != r) {
        s.items[kept] = std::move(s.items[r]);
        s.ids[kept] = s.ids[r];
      }
      ++kept;
    }
    if (i >= s.items.size()) moved_i = kept;
    s.items.erase(s.items.begin() + static_cast<std::ptrdiff_t>(kept), s.items.end());
    s.ids.resize(kept);
    s.head = 0;
    return moved_i;
  }

  iterator make(std::size_t i) noexcept {
    auto* base = slots_->items.data();
    return iterator(base + i, base + slots_->items.size());
  }

  std::unique_ptr<Slots> slots_;
};

}  // namespace broker::core
