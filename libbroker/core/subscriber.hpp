#pragma once
// Subscriber: the part of a session that other workers may read, one per session, shared by
// the session and by the topic index's entries naming it.
//
// Reference counted in the object itself (SubscriberPtr) rather than with std::shared_ptr: a
// vehicle fleet holds one per session, and the shared_ptr form (control block, weak count for
// shared_from_this, the index's own shared_ptr) cost about 48 bytes more per session. The
// index takes one reference while any of its entries names the Subscriber, however many.
//
// Thread safety: the count is atomic; `connected` and `persistent` are written by the session's
// worker and read on any worker (shared-subscription selection; a publisher's worker stores
// deliveries to persistent sessions with the message). The index's entry count is written under
// the index's writer lock only, so a Subscriber belongs to one index. `flow` is written by the
// session's worker only; any worker sets its bit in `waiters` (fetch_or), the session's worker
// takes them all (exchange).
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

namespace broker::core {

// Identifies a session: its home worker and its id in that worker's session table.
struct SubscriberKey {
  std::uint32_t worker = 0;
  std::uint64_t session_id = 0;
  bool operator==(const SubscriberKey&) const = default;
};

class SubscriberPtr;

struct Subscriber {
  explicit Subscriber(SubscriberKey k, std::string id = {}) : key(k), client_id(std::move(id)) {}
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  const SubscriberKey key;
  const std::string client_id;
  std::atomic<bool> connected{false};
  std::atomic<bool> persistent{false};
  // Publisher back-pressure (core/flow_control.hpp): FlowState written by the session's
  // worker through TopicIndex::set_flow, read when routing; bit (w % 64) of `waiters` asks for a wake-up of worker w.
  std::atomic<std::uint8_t> flow{0};
  // The engine's congestion epoch when it last became Congested (Engine::next_congestion_epoch).
  std::atomic<std::uint32_t> congested_epoch{0};
  std::atomic<std::uint64_t> waiters{0};

 private:
  friend class SubscriberPtr;
  friend class TopicIndex;
  void retain() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() const noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  mutable std::atomic<std::uint32_t> refs_{0};
  std::uint32_t index_entries_ = 0;  // the index's entries naming this; they share one reference
};

// An owning pointer to a Subscriber, with the parts of std::shared_ptr's interface we use.
class SubscriberPtr {
 public:
  SubscriberPtr() noexcept = default;
  SubscriberPtr(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): like shared_ptr
  // Takes a new reference to `s` (which may already be owned elsewhere).
  explicit SubscriberPtr(Subscriber* s) noexcept : p_(s) {
    if (p_) p_->retain();
  }
  SubscriberPtr(const SubscriberPtr& o) noexcept : SubscriberPtr(o.p_) {}
  SubscriberPtr(SubscriberPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  SubscriberPtr& operator=(SubscriberPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~SubscriberPtr() {
    if (p_) p_->release();
  }

  Subscriber* get() const noexcept { return p_; }
  Subscriber* operator->() const noexcept { return p_; }
  Subscriber& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  void reset() noexcept { SubscriberPtr().swap(*this); }
  void swap(SubscriberPtr& o) noexcept { std::swap(p_, o.p_); }
  // For tests and diagnostics only: a relaxed read, stale under concurrency.
  long use_count() const noexcept {
    return p_ ? static_cast<long>(p_->refs_.load(std::memory_order_relaxed)) : 0;
  }
  friend bool operator==(const SubscriberPtr& a, const SubscriberPtr& b) noexcept { return a.p_ == b.p_; }
  friend bool operator==(const SubscriberPtr& a, std::nullptr_t) noexcept { return a.p_ == nullptr; }

 private:
  Subscriber* p_ = nullptr;
};

inline SubscriberPtr make_subscriber(SubscriberKey key, std::string client_id = {}) {
  return SubscriberPtr(new Subscriber(key, std::move(client_id)));
}

}  // namespace broker::core
