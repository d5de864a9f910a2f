#pragma once
// QueueDispatcher: a Dispatcher without an event loop. Posted tasks wait in a queue and run, in
// posting order, on the caller's thread when it calls run(). It drives workers in process (the
// core harness of the tests, the in-process benchmarks), where one thread plays every worker.
//
// Thread safety: none; post() and run() come from one thread.
#include <cstddef>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "core/dispatcher.hpp"

namespace broker::core {

class QueueDispatcher final : public Dispatcher {
 public:
  explicit QueueDispatcher(unsigned workers) : workers_(workers), posted_(workers, 0) {}
  bool post(unsigned worker, std::function<void()> task) override {
    tasks_.push_back(std::move(task));
    ++posted_.at(worker);
    return true;
  }
  // How many tasks were posted to `worker` so far: a wake-up is an empty one.
  std::size_t posted_to(unsigned worker) const { return posted_.at(worker); }
  unsigned worker_count() const override { return workers_; }
  // Runs queued tasks, and those they queue, until none is left; returns how many ran.
  std::size_t run() {
    std::size_t ran = 0;
    while (!tasks_.empty()) {
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      task();
      ++ran;
    }
    return ran;
  }

 private:
  unsigned workers_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::size_t> posted_;
};

}  // namespace broker::core
