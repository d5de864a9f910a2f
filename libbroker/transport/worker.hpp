#pragma once
// Worker: one thread's libuv loop, its listeners, its links and its inbox. Internal to the
// transport; the core sees WorkerPool (Dispatcher) and core::Link only.
//
// Handle ownership: the Worker's own handles (wake-up, check, idle, timers) live inside it and
// are closed in stop phase 2; the Worker is destroyed only after its loop has run every close
// callback and uv_loop_close() succeeded. Each Listener and each TcpLink is owned by its close
// callback once uv_close() is called on it (before that: by the Worker's containers).
//
// Thread safety: post() and request_phase() are safe from any thread; everything else runs on
// the worker's thread (or, before run() and after it returned, on the pool owner's thread).
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/socket.hpp"
#include "transport/wakeup.hpp"
#include "transport/worker_pool.hpp"

namespace broker::transport {

class TcpLink;
class Worker;

// One listening socket of one worker, watched with uv_poll_t; we accept() ourselves (not
// uv_listen) so that when the process is out of fds the pending connection stays in the
// kernel backlog: libuv's built-in accept would accept and drop it (its "EMFILE trick").
//
// Thread safety: owner worker's thread only.
class Listener {
 public:
  Listener(Worker& worker, UniqueFd fd) : worker_(worker), fd_(std::move(fd)) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // uv_poll_init_socket; false on failure (nothing to close then).
  bool init(uv_loop_t& loop);
  void resume();
  void pause();
  // Stops watching and hands ownership to the close callback, which deletes this and closes
  // the socket (libuv: the fd must outlive the poll handle).
  static void close(std::unique_ptr<Listener> self);

 private:
  static void on_readable(uv_poll_t* handle, int status, int events);
  Worker& worker_;
  UniqueFd fd_;
  uv_poll_t poll_{};
};

class Worker {
 public:
  // A vector, not a list: 8 bytes per link instead of a 24-byte node and an iterator; a link
  // knows its index, and removal moves the last link into the gap.
  using LinkList = std::vector<std::unique_ptr<TcpLink>>;

  // Initializes the loop and the worker's own handles; init_status() says if it worked.
  Worker(WorkerPool& pool, unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Status init_status() const { return init_status_; }
  // Before run(): one listening socket per listener address.
  void add_listen_socket(UniqueFd fd) { listen_fds_.push_back(std::move(fd)); }
  // stop() without start(): close the listening sockets now, not at destruction.
  void discard_listen_sockets() { listen_fds_.clear(); }
  // The thread body: starts listeners and timers, tells the pool it is ready, runs the loop
  // until stop phase 2 has closed every handle.
  void run();

  // Any thread. See WorkerPool::post().
  bool post(std::function<void()>&& task);
  // Any thread: 1 = drain, 2 = close everything (also refuses further posts).
  void request_phase(int phase);

  // The worker whose thread is running, or nullptr.
  static Worker* current() noexcept;

  // For TcpLink and Listener (worker thread).
  unsigned index() const { return index_; }
  WorkerPool& pool() { return pool_; }
  Worker& sibling(unsigned index);
  uv_loop_t& loop() { return loop_; }
  WorkerCounters& counters() { return counters_; }
  const WorkerCallbacks& callbacks() const { return pool_.callbacks_; }
  const PoolOptions& options() const { return pool_.options_; }
  void fill_read_buffer(uv_buf_t* buf);
  std::vector<uv_buf_t>& scratch_bufs() { return scratch_bufs_; }
  // Output buffers for links, reused: a link's written buffer comes back here (a few kept).
  std::string take_buffer();
  void give_buffer(std::string&& buffer);
  void mark_dirty(TcpLink& link);
  // From a link that read `bytes`: one event of this turn (see coalesce_wake_ups).
  void note_read(std::size_t bytes) {
    ++events_this_turn_;
    bytes_this_turn_ += bytes;
  }
  // From a link's close callback: forgets and frees it.
  void destroy_link(TcpLink& link);
  // A connected socket arrives (accept or hand-over): makes a link, asks callbacks.open for a
  // handler, feeds it `received`, starts reading. Closes `fd` while draining.
  void adopt(UniqueFd fd, const std::string& received);
  // From a Listener: accept() failed with `err` (errno) because of a resource limit; stop
  // accepting for a moment (the connection waits in the backlog), log at most once a second.
  void pause_accepting(int err);
  void log_accept_error(int err);
  bool draining() const { return draining_; }

  const WorkerCounters& counters() const { return counters_; }

 private:
  static void on_wakeup(void* self);
  static void on_check(uv_check_t* handle);
  static void on_idle(uv_idle_t* handle);
  static void on_tick(uv_timer_t* handle);
  static void on_accept_resume(uv_timer_t* handle);

  void run_inbox();
  // End of a turn. Waking from epoll costs more than handling the packet that woke it: at 10K
  // msg/s QoS 1 on two cores, the switch back into the worker was 30 % of brokerd's CPU, one
  // per event. When this turn came soon after the last one (events are arriving closer than
  // the window) and handled only a few, the worker sleeps for the window, and its next poll
  // returns everything that arrived meanwhile: one wake-up for several events. The first
  // event after a quiet spell is handled at once; a busy turn (many events or bytes) does not
  // sleep, its wake-up is already shared. Costs up to the window in latency while traffic is dense.
  void coalesce_wake_ups();
  void begin_drain();
  void begin_stop();
  void close_own_handles();
  void close_listeners();
  void check_drained();

  WorkerPool& pool_;
  const unsigned index_;
  Status init_status_;
  WorkerCounters counters_;

  uv_loop_t loop_{};
  bool loop_open_ = false;
  Wakeup wakeup_;           // inbox and stop requests
  uv_check_t check_{};      // end of turn: hand_off, flush dirty links, then end_of_turn
  uv_idle_t idle_{};        // started while links are dirty, so the loop does not block first
  uv_timer_t tick_{};
  uv_timer_t accept_pause_{};
  bool handles_closed_ = false;

  std::vector<UniqueFd> listen_fds_;                // until run() wraps them in Listeners
  std::vector<std::unique_ptr<Listener>> listeners_;
  bool accepting_paused_ = false;
  std::uint64_t last_accept_log_ms_ = 0;
  std::uint64_t accept_errors_since_log_ = 0;

  LinkList links_;
  std::vector<TcpLink*> dirty_;
  std::vector<TcpLink*> flushing_;
  std::vector<uv_buf_t> scratch_bufs_;
  std::vector<std::string> spare_buffers_;
  std::uint64_t events_this_turn_ = 0;   // reads and posted tasks handled
  std::uint64_t bytes_this_turn_ = 0;    // bytes those reads returned
  std::uint64_t last_turn_end_ns_ = 0;   // uv_hrtime() when the last turn ended
  std::unique_ptr<char[]> read_buffer_;

  bool draining_ = false;         // phase 1 begun
  bool stopping_ = false;         // phase 2 begun
  bool drained_reported_ = false;

  std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mutex_
  bool closed_ = false;                       // guarded by inbox_mutex_: phase 2, posts refused
  int phase_requested_ = 0;                   // guarded by inbox_mutex_
  std::vector<std::function<void()>> running_;  // worker thread: the batch being run
};

}  // namespace broker::transport
