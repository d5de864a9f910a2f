#include "support/faulty_store.hpp"

#include <utility>

namespace broker::test {

FaultyStore::FaultyStore(StorePtr inner) : inner_(std::move(inner)) {}

void FaultyStore::fail_nth(std::uint64_t n, Status status) {
  std::lock_guard lock(mu_);
  fail_nth_ = n;
  nth_status_ = std::move(status);
}

void FaultyStore::fail_from(std::uint64_t n, Status status) {
  std::lock_guard lock(mu_);
  fail_from_ = n;
  from_status_ = std::move(status);
}

void FaultyStore::clear_faults() {
  std::lock_guard lock(mu_);
  fail_nth_ = 0;
  fail_from_ = 0;
}

void FaultyStore::hold_writes(bool hold) {
  std::lock_guard lock(mu_);
  hold_ = hold;
}

std::optional<Status> FaultyStore::planned_failure(std::uint64_t n) const {
  if (fail_nth_ != 0 && n == fail_nth_) return nth_status_;
  if (fail_from_ != 0 && n >= fail_from_) return from_status_;
  return std::nullopt;
}

void FaultyStore::submit(WriteBatch&& batch, std::function<void(const Status&)> done) {
  std::lock_guard lock(mu_);
  std::uint64_t n = ++submitted_;
  if (auto failure = planned_failure(n)) {
    ++failed_;
    batch.clear();
    done = [inner_done = std::move(done), st = std::move(*failure)](const Status&) {
      if (inner_done) inner_done(st);
    };
  }
  if (hold_) {
    held_.push_back(Held{std::move(batch), std::move(done)});
    return;
  }
  // Forward under the lock: submission order to the inner store must match ours, and a
  // held-then-released batch must not be overtaken.
  inner_->submit(std::move(batch), std::move(done));
}

void FaultyStore::release_held() {
  std::lock_guard lock(mu_);
  for (auto& h : held_) inner_->submit(std::move(h.batch), std::move(h.done));
  held_.clear();
}

std::size_t FaultyStore::drop_unsynced() {
  std::lock_guard lock(mu_);
  std::size_t n = held_.size();
  held_.clear();
  return n;
}

std::uint64_t FaultyStore::submitted() const {
  std::lock_guard lock(mu_);
  return submitted_;
}

std::uint64_t FaultyStore::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

}  // namespace broker::test
