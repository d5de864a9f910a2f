#pragma once
// WorkerCore: the MQTT semantics one worker thread owns: its connections' handlers, its
// sessions (a client id lives on the worker it hashes to), and the batches of deliveries it
// sends to other workers. The transport's Worker owns one and drives it from its loop.
//
// Thread safety: every method runs on the owning worker's thread, except where stated.
#include <cstdint>
#include <functional>
#include <memory>

#include "core/link.hpp"

namespace broker::core {

class Engine;
class WorkerCore;

// How a WorkerCore reaches the other workers; implemented by the transport.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Runs `task` on worker `worker`'s thread soon, in post order per (sender, receiver) pair.
  // Safe from any thread. Returns false when that worker is stopping (the task is dropped).
  virtual bool post(unsigned worker, std::function<void(WorkerCore&)> task) = 0;
  virtual unsigned worker_count() const = 0;
};

}  // namespace broker::core
