#pragma once
// FaultyStore: a Store that wraps another and injects the failures a disk can produce, so the
// broker's error and crash-recovery paths run in tests without a real disk failing.
//
//  - fail_nth(n, st): the n-th submitted batch (1-based) completes with `st`, unapplied.
//  - fail_from(n, st): every batch from the n-th on does (a disk that filled up).
//  - hold_writes(true): batches are kept here, neither applied nor completed, as if the
//    writer had them in an unsynced transaction. release_held() passes them on in order;
//    drop_unsynced() throws them away without completing them, modelling a crash: a test then
//    checks that nothing the broker acknowledged was among them.
//
// A failed batch still completes in order with the batches around it: it travels to the
// inner store as an empty batch whose completion reports the injected status.
//
// Thread safety: every method is safe from any thread. One recursive mutex guards the plan and
// keeps forwarding in submission order; it is recursive because the memory store completes
// inside submit(), and a completion may submit again or change the plan.
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "broker/store.hpp"

namespace broker::test {

class FaultyStore final : public Store {
 public:
  // REQUIRES: inner is not null.
  explicit FaultyStore(StorePtr inner);

  void fail_nth(std::uint64_t n, Status status);
  void fail_from(std::uint64_t n, Status status);
  void clear_faults();
  void hold_writes(bool hold);
  // Forwards every held batch to the inner store, in submission order.
  void release_held();
  // Forgets held batches without running their completions. Returns how many were dropped.
  std::size_t drop_unsynced();

  std::uint64_t submitted() const;
  std::uint64_t failed() const;
  Store& inner() noexcept { return *inner_; }

  Status load(StoreVisitor& visitor) override { return inner_->load(visitor); }
  void submit(WriteBatch&& batch, std::function<void(const Status&)> done) override;
  // Waits for batches that reached the inner store; held ones are not waited for.
  void flush() override { inner_->flush(); }
  Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) override {
    return inner_->read_log(from, max);
  }
  Result<std::uint64_t> find_log_time(std::uint64_t time_ms) override {
    return inner_->find_log_time(time_ms);
  }
  Result<std::uint64_t> consumer_offset(std::string_view consumer) override {
    return inner_->consumer_offset(consumer);
  }
  Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) override {
    return inner_->commit_consumer_offset(consumer, next);
  }
  Result<std::uint64_t> trim_log(std::uint64_t min_arrival_ms, std::uint64_t max_bytes) override {
    return inner_->trim_log(min_arrival_ms, max_bytes);
  }

 private:
  struct Held {
    WriteBatch batch;
    std::function<void(const Status&)> done;
  };
  // The status the `n`-th batch gets, if it is to fail. REQUIRES: mu_ held.
  std::optional<Status> planned_failure(std::uint64_t n) const;

  StorePtr inner_;
  mutable std::recursive_mutex mu_;
  // All below guarded by mu_.
  std::uint64_t submitted_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t fail_nth_ = 0;  // 0 = none
  std::uint64_t fail_from_ = 0;  // 0 = none
  Status nth_status_;
  Status from_status_;
  bool hold_ = false;
  std::vector<Held> held_;
};

}  // namespace broker::test
