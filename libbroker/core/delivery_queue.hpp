#pragma once
// DeliveryQueue: a session's FIFO of deliveries that costs one pointer while empty. libstdc++'s
// std::deque allocates about 600 bytes even when empty, and most sessions of a vehicle fleet
// have nothing queued most of the time; the deque is made on the first push and freed when the
// queue empties. It also counts what the session's limits need at a glance: its QoS 0 entries
// and the bytes of its oversize ones (larger than max_queued_bytes on their own).
//
// Thread safety: owned by its session's worker.
#include <cstddef>
#include <deque>
#include <memory>

#include "core/delivery.hpp"

namespace broker::core {

// A delivery larger than the queue's byte bound (Limits::max_queued_bytes) on its own: a queue
// keeps one such message beside that bound (WorkerCore::deliver).
inline bool oversize(const Delivery& delivery, std::uint64_t byte_bound) noexcept {
  return queued_size(delivery) > byte_bound;
}

class DeliveryQueue {
 public:
  using Storage = std::deque<Delivery>;

  bool empty() const noexcept { return !items_ || items_->deque.empty(); }
  std::size_t size() const noexcept { return items_ ? items_->deque.size() : 0; }
  // Whether a QoS 0 delivery waits here: a later one must then wait behind it, not go out
  // directly, or it would overtake it [MQTT-4.6.0-6].
  bool holds_qos0() const noexcept { return items_ && items_->qos0 != 0; }
  // Bytes (queued_size) and number of the entries oversize for the byte bound given to push_back.
  std::uint64_t oversize_bytes() const noexcept { return items_ ? items_->oversize_bytes : 0; }
  std::size_t oversize_count() const noexcept { return items_ ? items_->oversize : 0; }
  // REQUIRES: !empty(). Its QoS and message must not be changed through it (they are counted).
  Delivery& front() { return items_->deque.front(); }
  void pop_front() {
    uncount(items_->deque.front());
    items_->deque.pop_front();
    if (items_->deque.empty()) items_.reset();
  }
  // `byte_bound`: Limits::max_queued_bytes, the same for every push.
  void push_back(Delivery&& delivery, std::uint64_t byte_bound) {
    if (!items_) items_ = std::make_unique<Items>(byte_bound);
    if (delivery.qos == 0) ++items_->qos0;
    if (oversize(delivery, items_->byte_bound)) {
      items_->oversize_bytes += queued_size(delivery);
      ++items_->oversize;
    }
    items_->deque.push_back(std::move(delivery));
  }
  // Iteration with erase (shared-subscription hand-off). The storage stays while iterating.
  Storage::iterator begin() { return items_ ? items_->deque.begin() : Storage::iterator(); }
  Storage::iterator end() { return items_ ? items_->deque.end() : Storage::iterator(); }
  Storage::iterator erase(Storage::iterator it) {
    uncount(*it);
    return items_->deque.erase(it);
  }

 private:
  void uncount(const Delivery& delivery) noexcept {
    if (delivery.qos == 0) --items_->qos0;
    if (oversize(delivery, items_->byte_bound)) {
      items_->oversize_bytes -= queued_size(delivery);
      --items_->oversize;
    }
  }
  // The counts live with the deque, so an empty queue still costs one pointer.
  struct Items {
    explicit Items(std::uint64_t bound) : byte_bound(bound) {}
    Storage deque;
    std::size_t qos0 = 0;
    std::uint64_t byte_bound;
    std::uint64_t oversize_bytes = 0;
    std::size_t oversize = 0;
  };
  std::unique_ptr<Items> items_;
};

}  // namespace broker::core
