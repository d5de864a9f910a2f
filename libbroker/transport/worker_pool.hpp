#pragma once
// WorkerPool: the broker's threads. N workers, each one thread running one libuv loop; each
// worker accepts on its own SO_REUSEPORT listening socket per listener address and owns the
// connections it accepted (or received by hand-over). The core plugs in through
// WorkerCallbacks and reaches other workers through core::Dispatcher (post()).
//
//   WorkerPool pool(PoolOptions{.workers = 4, .max_inbox = 1000000}, callbacks);
//   if (auto st = pool.bind(options.listeners); !st) ...
//   if (auto st = pool.start(); !st) ...
//   ...
//   pool.stop();   // graceful: draining, then close everything, then join
//
// One loop turn on a worker: timers (tick), pending and I/O callbacks (on_bytes, posted tasks,
// accepts), then hand_off, then every link that was written to is flushed with one vectored
// write, then end_of_turn (which sees what the kernel did not take), then, while packets
// arrive densely, a short sleep that lets the next poll collect several (wake_up_coalesce_us),
// then close callbacks (on_closed).
//
// Thread safety: post(), stop(), listening_ports(), stats(), worker_count() and
// current_worker() are safe from any thread. bind() and start() are called by the owner before
// the workers run. Every callback runs on the thread of the worker it names.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "broker/options.hpp"
#include "broker/status.hpp"
#include "core/dispatcher.hpp"
#include "core/link.hpp"
#include "transport/socket.hpp"

namespace broker::transport {

class Worker;

// How the core plugs into the workers. Empty callbacks are skipped (open: an empty one closes
// every connection).
// Thread safety: each callback runs on the thread of the worker it names, concurrently with
// the same callback on other workers; none may block.
struct WorkerCallbacks {
  // Makes the handler of a new connection, accepted on `worker` or arrived there by hand-over
  // (then its first on_bytes() carries the bytes the old handler passed to hand_over()). The
  // Link stays valid until the handler's on_closed() returns (or, after hand_over(), until the
  // handler is destroyed). Returning nullptr closes the connection (no on_closed()).
  std::function<std::unique_ptr<core::ConnectionHandler>(unsigned worker, core::Link& link)> open;
  // Once per loop turn, after the turn's I/O callbacks and posted tasks and before the
  // turn's writes are flushed: the place to hand work to other workers, which can start on
  // it while this one writes.
  std::function<void(unsigned worker)> hand_off;
  // Once per loop turn, after the turn's writes were flushed (it sees what the kernel did
  // not take): the place for back-pressure decisions. True: work waits for the next turn,
  // which then comes without waiting for an event.
  std::function<bool(unsigned worker)> end_of_turn;
  // Every PoolOptions::tick_interval_ms. The core reads its own clock: times compared with
  // the ones it took itself must come from the same one.
  std::function<void(unsigned worker)> tick;
  // Stop phase 1, once per worker: its listeners are closed and no new connection will come
  // (accepted or handed over). The core now sends its DISCONNECTs and closes its links;
  // posted tasks, ticks, hand_off and end_of_turn keep running while the links drain.
  std::function<void(unsigned worker)> draining;
};

// Options::workers = 0: one worker per core this process may run on (its CPU affinity, which
// containers narrow), less one, at least one. The spare core is left to the kernel's network
// work outside the broker's threads (a NIC's receive processing runs in softirq) and to
// whatever else runs on the machine: on two cores shared with a load generator, one worker
// took less CPU per message than two in every benchmark, and delivered more.
// Thread safety: any thread.
unsigned automatic_worker_count();

// Thread safety: plain value, copied into the pool.
struct PoolOptions {
  // Worker threads. REQUIRES: >= 1.
  unsigned workers = 1;
  // Tasks waiting in one worker's inbox; past it post() returns false and counts a drop.
  // Default: 1,000,000 (Limits::max_worker_inbox).
  std::uint32_t max_inbox = 1000000;
  // Period of WorkerCallbacks::tick. Default: 1000 ms.
  std::uint32_t tick_interval_ms = 1000;
  // Longest stop() waits for every worker to finish draining (all its links closed) before it
  // closes what remains. Default: 3000 ms.
  std::uint32_t drain_timeout_ms = 3000;
  // A closing link whose queued data the peer does not take within this time is closed
  // without it (a peer that stopped reading must not hold a socket forever). Default: 5000 ms.
  std::uint32_t close_linger_ms = 5000;
  // After a turn that handled a few events arriving close together, the worker sleeps this
  // long before it polls again (see Worker::coalesce_wake_ups). 0 = never. Default: 0 here;
  // the broker passes Options::wake_up_coalesce_us.
  std::uint32_t wake_up_coalesce_us = 0;
};

// A snapshot of the transport's counters, summed over the workers.
// Thread safety: plain value.
struct TransportStats {
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;             // accepted by the kernel
  std::uint64_t connections_open = 0;          // links alive now (accepted + arrived - closed)
  std::uint64_t connections_accepted = 0;
  std::uint64_t accept_errors = 0;             // failed accept() calls, EMFILE included
  std::uint64_t inbox_drops = 0;               // post() refused because an inbox was full
  std::uint64_t hand_overs = 0;                // sockets moved to another worker
  std::uint64_t hand_overs_failed = 0;         // moves that lost the connection (see hand_over)
  std::uint64_t coalescing_pauses = 0;         // sleeps after a turn (wake_up_coalesce_us)
};

// Per-worker counters, a cache line of their own so workers do not share one.
// Thread safety: relaxed atomics, written by their worker (inbox_drops: by posting threads),
// read from any thread.
struct alignas(64) WorkerCounters {
  std::atomic<std::uint64_t> bytes_read{0};
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> inbox_drops{0};  // written by posting threads
  std::atomic<std::uint64_t> hand_overs{0};
  std::atomic<std::uint64_t> hand_overs_failed{0};
  std::atomic<std::uint64_t> coalescing_pauses{0};
};

// The Dispatcher every worker's core uses.
// Thread safety: post(), stop(), listening_ports(), stats(), worker_count() and
// current_worker() from any thread; bind() and start() from the owner before the workers run.
class WorkerPool final : public core::Dispatcher {
 public:
  // Creates the workers' loops; binds nothing, starts no thread.
  WorkerPool(const PoolOptions& options, WorkerCallbacks callbacks);
  // Stops (as stop()) if running. REQUIRES: not called from a worker thread.
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Opens one listening socket per worker for each listener (SO_REUSEPORT; port 0 picks one
  // free port shared by all workers). Connections wait in the kernel until start().
  // REQUIRES: called at most once, before start().
  // @return IoError "cannot listen on 0.0.0.0:1883: address already in use" (the first
  //         address that failed; nothing stays bound); InvalidArgument for a non-numeric
  //         host; Unavailable if called twice or after start().
  Status bind(const std::vector<ListenerOptions>& listeners);

  // Ports the listeners are bound to, in bind() order; empty before bind().
  std::vector<std::uint16_t> listening_ports() const;

  // Starts the worker threads; returns once every loop runs and accepts.
  // @return Unavailable if called twice or after stop(); Internal if a thread cannot start.
  Status start();

  // core::Dispatcher. Queues `task` for worker `worker` (FIFO per worker, so tasks from one
  // sender run in post order) and wakes its loop; callable before start() (tasks wait).
  // Tasks keep running during stop phase 1 (draining) so cross-worker work can finish.
  // @return false (and `task` is destroyed unrun) if `worker` is out of range, the inbox
  //         holds max_inbox tasks (counted in inbox_drops), or stop has reached phase 2.
  bool post(unsigned worker, std::function<void()> task) override;
  unsigned worker_count() const override;

  // Graceful stop; idempotent, returns when every thread is joined.
  // Phase 1 on every worker: close its listeners, call callbacks.draining, keep running until
  // all its links are closed (queued writes flushed). stop() waits for every worker to finish
  // phase 1, or drain_timeout_ms. Phase 2: post() is refused, tasks already queued run, every
  // remaining link is closed (its handler gets on_closed()), the loops end, threads join.
  // REQUIRES: not called from a worker thread (logged and ignored if it is).
  void stop();

  // The index of the worker whose thread calls this, or nullopt on any other thread.
  std::optional<unsigned> current_worker() const;

  TransportStats stats() const;

 private:
  friend class Worker;
  // Called by a worker when its phase 1 is complete.
  void worker_drained();

  PoolOptions options_;
  WorkerCallbacks callbacks_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;

  mutable std::mutex ports_mutex_;
  std::vector<std::uint16_t> ports_;  // guarded by ports_mutex_
  bool bound_ = false;                // owner thread only (bind/start)

  std::mutex state_mutex_;            // serializes start() and stop()
  bool started_ = false;              // guarded by state_mutex_
  bool stopped_ = false;              // guarded by state_mutex_

  std::mutex ready_mutex_;
  std::condition_variable ready_cv_;
  unsigned ready_count_ = 0;          // guarded by ready_mutex_: loops running
  unsigned drained_count_ = 0;        // guarded by ready_mutex_: workers done with phase 1
};

}  // namespace broker::transport
