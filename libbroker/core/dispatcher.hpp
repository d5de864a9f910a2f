#pragma once
// Dispatcher: how the core of one worker reaches the other workers (cross-worker delivery
// batches, socket hand-over, embedder publishes). Implemented by the transport with a
// mutex-guarded queue plus an eventfd per worker (transport/wakeup.hpp says why not uv_async_t).
//
// Thread safety: post() and worker_count() are safe from any thread.
#include <functional>

namespace broker::core {

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Runs `task` on worker `worker`'s thread soon; tasks from one sender to one receiver run
  // in post order. Safe from any thread. Returns false when that worker is stopping (the task
  // is dropped) or its inbox is full.
  virtual bool post(unsigned worker, std::function<void()> task) = 0;
  virtual unsigned worker_count() const = 0;
};

}  // namespace broker::core
