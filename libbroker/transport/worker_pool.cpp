#include "transport/worker_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "transport/worker.hpp"
#include "util/log.hpp"

namespace broker::transport {

unsigned automatic_worker_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = ::sched_getaffinity(0, sizeof set, &set) == 0
                  ? CPU_COUNT(&set)
                  : static_cast<int>(std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::max(1, cores - 1));
}

WorkerPool::WorkerPool(const PoolOptions& options, WorkerCallbacks callbacks)
    : options_(options), callbacks_(std::move(callbacks)) {
  if (options_.workers == 0) options_.workers = 1;
  workers_.reserve(options_.workers);
  for (unsigned i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
  }
}

WorkerPool::~WorkerPool() {
  stop();
  workers_.clear();  // each Worker closes its loop (and anything never started) here
}

Status WorkerPool::bind(const std::vector<ListenerOptions>& listeners) {
  {
    std::lock_guard lock(state_mutex_);
    if (started_ || stopped_) return Status::unavailable("bind() after start()");
  }
  if (bound_) return Status::unavailable("listeners already bound");
  // Open everything first, so a failure leaves nothing bound.
  std::vector<std::vector<UniqueFd>> per_listener(listeners.size());
  std::vector<std::uint16_t> ports(listeners.size());
  // An IPv6 listener is dual stack unless an IPv4 listener has its port: then it leaves IPv4
  // to that one ("0.0.0.0:1883" plus "[::]:1883" would otherwise collide).
  auto is_v6 = [](const ListenerOptions& l) { return l.host.find(':') != std::string::npos; };
  auto v6_only = [&](const ListenerOptions& l) {
    return is_v6(l) && l.port != 0 &&
           std::any_of(listeners.begin(), listeners.end(),
                       [&](const ListenerOptions& o) { return !is_v6(o) && o.port == l.port; });
  };
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    Status st = open_listen_sockets(listeners[i], worker_count(), per_listener[i], ports[i],
                                    v6_only(listeners[i]));
    if (!st) return st;
  }
  for (auto& fds : per_listener) {
    for (unsigned w = 0; w < worker_count(); ++w) workers_[w]->add_listen_socket(std::move(fds[w]));
  }
  bound_ = true;
  std::lock_guard lock(ports_mutex_);
  ports_ = std::move(ports);
  return Status::ok();
}

std::vector<std::uint16_t> WorkerPool::listening_ports() const {
  std::lock_guard lock(ports_mutex_);
  return ports_;
}

Status WorkerPool::start() {
  std::lock_guard lock(state_mutex_);
  if (started_ || stopped_) return Status::unavailable("worker pool already started");
  for (auto& w : workers_) {
    if (Status st = w->init_status(); !st) return st;
  }
  started_ = true;
  try {
    threads_.reserve(workers_.size());
    for (auto& w : workers_) {
      Worker* worker = w.get();
      threads_.emplace_back([worker] { worker->run(); });
    }
  } catch (const std::system_error& e) {
    // Out of threads: stop the ones that run; the rest close their loops in ~Worker.
    for (auto& w : workers_) w->request_phase(2);
    for (auto& t : threads_) t.join();
    threads_.clear();
    stopped_ = true;
    return Status::internal(fmt::format("cannot start worker thread: {}", e.what()));
  }
  std::unique_lock ready(ready_mutex_);
  ready_cv_.wait(ready, [this] { return ready_count_ == workers_.size(); });
  return Status::ok();
}

bool WorkerPool::post(unsigned worker, std::function<void()> task) {
  if (worker >= workers_.size()) return false;
  return workers_[worker]->post(std::move(task));
}

unsigned WorkerPool::worker_count() const { return static_cast<unsigned>(workers_.size()); }

void WorkerPool::stop() {
  if (current_worker()) {
    log::error("WorkerPool::stop() called from worker {}; ignored", *current_worker());
    return;
  }
  std::lock_guard lock(state_mutex_);
  if (stopped_) return;
  stopped_ = true;
  if (!started_) {
    for (auto& w : workers_) w->discard_listen_sockets();
    return;
  }

  for (auto& w : workers_) w->request_phase(1);
  {
    std::unique_lock drained(ready_mutex_);
    bool all = ready_cv_.wait_for(drained, std::chrono::milliseconds(options_.drain_timeout_ms),
                                  [this] { return drained_count_ >= workers_.size(); });
    if (!all) {
      log::warn("stop: {} of {} workers still had open connections after {} ms; closing them",
                workers_.size() - drained_count_, workers_.size(), options_.drain_timeout_ms);
    }
  }
  for (auto& w : workers_) w->request_phase(2);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkerPool::worker_drained() {
  {
    std::lock_guard lock(ready_mutex_);
    ++drained_count_;
  }
  ready_cv_.notify_all();
}

std::optional<unsigned> WorkerPool::current_worker() const {
  Worker* w = Worker::current();
  if (w != nullptr && &w->pool() == this) return w->index();
  return std::nullopt;
}

TransportStats WorkerPool::stats() const {
  TransportStats s;
  for (const auto& w : workers_) {
    const WorkerCounters& c = w->counters();
    auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    s.bytes_read += get(c.bytes_read);
    s.bytes_written += get(c.bytes_written);
    s.connections_open += get(c.connections_open);
    s.connections_accepted += get(c.connections_accepted);
    s.accept_errors += get(c.accept_errors);
    s.inbox_drops += get(c.inbox_drops);
    s.hand_overs += get(c.hand_overs);
    s.hand_overs_failed += get(c.hand_overs_failed);
    s.coalescing_pauses += get(c.coalescing_pauses);
  }
  return s;
}

}  // namespace broker::transport
