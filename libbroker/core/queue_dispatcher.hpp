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

#include "core/dispatcher.hpp"

namespace broker::core {

class QueueDispatcher final : public Dispatcher {
 public:
  explicit QueueDispatcher(unsigned workers) : workers_(workers) {}
  bool post(unsigned /*worker*/, std::function<void()> task) override {
    tasks_.push_back(std::move(task));
    return true;
  }
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
};

}  // namespace broker::core
