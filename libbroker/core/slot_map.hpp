#pragma once
// SlotMap<T, IdOf>: pointers to objects by a 64-bit id the map hands out, at 8 bytes per
// object. A worker finds its sessions (by SubscriberKey) and its connections (by serial) this
// way; a std::unordered_map spends a 32-byte node plus a bucket per entry, which adds up at a
// million sessions.
//
// An id is (generation << 32) | slot. Freed slots are reused with the next generation, so an
// id that was erased never finds the slot's new occupant: find() compares the occupant's own
// id, IdOf()(const T&), with the one asked for. Ids are never 0. A slot is reused after 2^32
// generations at the earliest.
//
// Thread safety: owned by one worker thread.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace broker::core {

template <typename T, typename IdOf>
class SlotMap {
 public:
  // A new id whose slot holds `value` (may be null until set() fills it).
  std::uint64_t insert(T* value) {
    std::uint64_t id;
    if (free_.empty()) {
      id = (std::uint64_t{1} << 32) | slots_.size();
      slots_.push_back(value);
    } else {
      id = free_.back() + (std::uint64_t{1} << 32);
      if ((id >> 32) == 0) id |= std::uint64_t{1} << 32;  // generation wrapped: skip 0
      free_.pop_back();
      slots_[slot_of(id)] = value;
    }
    return id;
  }
  // REQUIRES: `id` came from insert() and was not erased.
  void set(std::uint64_t id, T* value) noexcept { slots_[slot_of(id)] = value; }

  // The object whose id is `id`, or null (erased, never issued, or not set yet).
  T* find(std::uint64_t id) const noexcept {
    const std::size_t slot = slot_of(id);
    if (slot >= slots_.size()) return nullptr;
    T* value = slots_[slot];
    return value && IdOf{}(*value) == id ? value : nullptr;
  }

  // REQUIRES: `id` came from insert() and was not erased.
  void erase(std::uint64_t id) {
    slots_[slot_of(id)] = nullptr;
    free_.push_back(id);
  }

  std::size_t size() const noexcept { return slots_.size() - free_.size(); }

  // Calls f(T&) for every object present. `f` may insert and erase: an object erased before
  // its turn is skipped; one inserted during the walk may or may not be visited.
  template <typename F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (T* value = slots_[i]) f(*value);
    }
  }

 private:
  static std::size_t slot_of(std::uint64_t id) noexcept {
    return static_cast<std::size_t>(id & 0xFFFFFFFFu);
  }
  std::vector<T*> slots_;
  std::vector<std::uint64_t> free_;  // erased ids; their slots are reused first
};

}  // namespace broker::core
