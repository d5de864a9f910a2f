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

  bool empty() const noexcept { return !items_ || items_->deque.empty(); }
  std::size_t size() const noexcept { return items_ ? items_->deque.size() : 0; }
  // Whether a QoS 0 delivery waits here: a later one must then wait behind it, not go out
  // directly, or it would overtake it [MQTT-4.6.0-6].
  bool holds_qos0() const noexcept { return items_ && items_->qos0 != 0; }
  // REQUIRES: !empty(). Its QoS must not be changed through it (holds_qos0 counts them).
  Delivery& front() { return items_->deque.front(); }
  void pop_front() {
    if (items_->deque.front().qos == 0) --items_->qos0;
    items_->deque.pop_front();
    if (items_->deque.empty()) items_.reset();
  }
  void push_back(Delivery&& delivery) {
    if (!items_) items_ = std::make_unique<Items>();
    if (delivery.qos == 0) ++items_->qos0;
    items_->deque.push_back(std::move(delivery));
  }
  // Iteration with erase (shared-subscription hand-off). The storage stays while iterating.
  Storage::iterator begin() { return items_ ? items_->deque.begin() : Storage::iterator(); }
  Storage::iterator end() { return items_ ? items_->deque.end() : Storage::iterator(); }
  Storage::iterator erase(Storage::iterator it) {
    if (it->qos == 0) --items_->qos0;
    return items_->deque.erase(it);
  }

 private:
  // The count lives with the deque, so an empty queue still costs one pointer.
  struct Items {
    Storage deque;
    std::size_t qos0 = 0;
  };
  std::unique_ptr<Items> items_;
};

}  // namespace broker::core
