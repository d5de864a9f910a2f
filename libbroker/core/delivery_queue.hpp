#pragma once
// DeliveryQueue: a session's FIFO of deliveries that costs one pointer while empty. libstdc++'s
// std::deque allocates about 600 bytes even when empty, and most sessions of a vehicle fleet
// have nothing queued most of the time; the deque is made on the first push and freed when the
// queue empties.
//
// Thread safety: owned by its session's worker.
#include <cstddef>
#include <deque>
#include <memory>

#include "core/delivery.hpp"

namespace broker::core {

class DeliveryQueue {
 public:
  using Storage = std::deque<Delivery>;

  bool empty() const noexcept { return !items_ || items_->empty(); }
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }
  // REQUIRES: !empty().
  Delivery& front() { return items_->front(); }
  void pop_front() {
    items_->pop_front();
    if (items_->empty()) items_.reset();
  }
  void push_back(Delivery&& delivery) {
    if (!items_) items_ = std::make_unique<Storage>();
    items_->push_back(std::move(delivery));
  }
  // Iteration with erase (shared-subscription hand-off). The storage stays while iterating.
  Storage::iterator begin() { return items_ ? items_->begin() : Storage::iterator(); }
  Storage::iterator end() { return items_ ? items_->end() : Storage::iterator(); }
  Storage::iterator erase(Storage::iterator it) { return items_->erase(it); }

 private:
  std::unique_ptr<Storage> items_;
};

}  // namespace broker::core
