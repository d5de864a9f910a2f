#include "transport/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "transport/tcp_link.hpp"
#include "util/log.hpp"

namespace broker::transport {

namespace {
thread_local Worker* t_current_worker = nullptr;

// Read buffer per worker, handed to every read of its links.
constexpr std::size_t kReadBufferSize = 64 * 1024;
// What a graceful stop still reads from one connection before closing it.
constexpr std::size_t kDrainReadLimit = 256 * 1024;
// accept() calls per readiness event: bounded so a connection storm cannot starve the
// established links of this loop turn (the poll is level-triggered and fires again).
constexpr int kAcceptBatch = 64;
// How long accepting pauses after EMFILE/ENFILE; connections wait in the kernel backlog.
constexpr std::uint64_t kAcceptPauseMs = 100;
constexpr std::uint64_t kAcceptLogIntervalMs = 1000;
// Link output buffers kept for reuse per worker, and the capacities worth keeping.
constexpr std::size_t kSpareBuffers = 32;
constexpr std::size_t kMinSpareBuffer = 1024;
constexpr std::size_t kMaxSpareBuffer = 128 * 1024;
// A turn with this many events, or that read this many bytes, shares its wake-up enough;
// sleeping after it would only add latency, and slow large messages (each needs several
// turns: in one benchmark run with 64 KiB messages, pausing after such turns slowed them).
constexpr std::uint64_t kCoalesceMaxEvents = 16;
constexpr std::uint64_t kCoalesceMaxBytes = 16 * 1024;

void ignore_close(uv_handle_t*) {}
}  // namespace

// ---- Listener ------------------------------------------------------------------------------

bool Listener::init(uv_loop_t& loop) {
  poll_.data = this;
  int rc = uv_poll_init_socket(&loop, &poll_, fd_.get());
  if (rc < 0) {
    log::error("worker {}: cannot watch listening socket: {}", worker_.index(), uv_strerror(rc));
    return false;
  }
  return true;
}

void Listener::resume() {
  if (int rc = uv_poll_start(&poll_, UV_READABLE, on_readable); rc < 0) {
    log::error("worker {}: cannot watch listening socket: {}", worker_.index(), uv_strerror(rc));
  }
}

void Listener::pause() { uv_poll_stop(&poll_); }

void Listener::close(std::unique_ptr<Listener> self) {
  Listener* raw = self.release();
  uv_close(reinterpret_cast<uv_handle_t*>(&raw->poll_),
           [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
}

void Listener::on_readable(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<Listener*>(handle->data);
  Worker& worker = self->worker_;
  if (status < 0) {
    worker.log_accept_error(-status);
    return;
  }
  for (int i = 0; i < kAcceptBatch && !worker.draining(); ++i) {
    int fd = ::accept4(self->fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      worker.counters().connections_accepted.fetch_add(1, std::memory_order_relaxed);
      // Small MQTT packets must not wait for Nagle; writes are already coalesced per turn.
      int one = 1;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      worker.adopt(UniqueFd(fd), std::string());
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED) continue;  // the next one may be fine
    worker.counters().accept_errors.fetch_add(1, std::memory_order_relaxed);
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      worker.pause_accepting(err);
    } else {
      worker.log_accept_error(err);
    }
    return;
  }
}

// ---- Worker --------------------------------------------------------------------------------

Worker::Worker(WorkerPool& pool, unsigned index)
    : pool_(pool), index_(index), read_buffer_(new char[kReadBufferSize]) {
  int rc = uv_loop_init(&loop_);
  if (rc < 0) {
    init_status_ = Status::internal(fmt::format("worker {}: event loop: {}", index, uv_strerror(rc)));
    return;
  }
  loop_open_ = true;
  loop_.data = this;
  if (int err = wakeup_.init(loop_, on_wakeup, this); err < 0)
    init_status_ = Status::internal(fmt::format("worker {}: eventfd: {}", index, uv_strerror(err)));
  // None of these can fail on Linux once the loop exists; they only link into the loop.
  uv_check_init(&loop_, &check_);
  uv_idle_init(&loop_, &idle_);
  uv_timer_init(&loop_, &tick_);
  uv_timer_init(&loop_, &accept_pause_);
  check_.data = idle_.data = tick_.data = accept_pause_.data = this;
  uv_check_start(&check_, on_check);
}

Worker::~Worker() {
  if (!loop_open_) return;
  // run() never ran or never finished: close what is open here, on the owner's thread.
  close_listeners();
  for (auto& link : links_) link->force_close();
  close_own_handles();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) log::error("worker {}: loop has open handles at exit", index_);
}

Worker* Worker::current() noexcept { return t_current_worker; }

Worker& Worker::sibling(unsigned index) { return *pool_.workers_[index]; }

void Worker::run() {
  t_current_worker = this;
  for (auto& fd : listen_fds_) {
    auto listener = std::make_unique<Listener>(*this, std::move(fd));
    if (!listener->init(loop_)) continue;  // logged; the fd closes with `listener`
    listener->resume();
    listeners_.push_back(std::move(listener));
  }
  listen_fds_.clear();
  std::uint64_t period = options().tick_interval_ms != 0 ? options().tick_interval_ms : 1000;
  uv_timer_start(&tick_, on_tick, period, period);

  {
    std::lock_guard lock(pool_.ready_mutex_);
    ++pool_.ready_count_;
  }
  pool_.ready_cv_.notify_all();

  uv_run(&loop_, UV_RUN_DEFAULT);
  // Phase 2 closed every handle; run() returns only after their close callbacks.
  if (uv_loop_close(&loop_) == 0) {
    loop_open_ = false;
  } else {
    log::error("worker {}: loop still has handles after stop", index_);
  }
  t_current_worker = nullptr;
}

bool Worker::post(std::function<void()>&& task) {
  bool first = false;
  {
    std::lock_guard lock(inbox_mutex_);
    if (closed_) return false;
    if (inbox_.size() >= options().max_inbox) {
      counters_.inbox_drops.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    inbox_.push_back(std::move(task));
    first = inbox_.size() == 1;
  }
  // One wake-up per batch (the worker swaps the whole inbox), outside the lock so the woken
  // worker does not wait for it; the eventfd outlives every poster.
  if (first) wakeup_.signal();
  return true;
}

void Worker::request_phase(int phase) {
  {
    std::lock_guard lock(inbox_mutex_);
    if (phase >= 2) closed_ = true;
    if (phase_requested_ >= phase) return;
    phase_requested_ = phase;
  }
  wakeup_.signal();
}

void Worker::run_inbox() {
  {
    std::lock_guard lock(inbox_mutex_);
    running_.swap(inbox_);
  }
  events_this_turn_ += running_.size();
  for (auto& task : running_) {
    if (task) task();
  }
  running_.clear();
}

void Worker::on_wakeup(void* worker) {
  auto* self = static_cast<Worker*>(worker);
  self->run_inbox();
  int phase;
  {
    std::lock_guard lock(self->inbox_mutex_);
    phase = self->phase_requested_;
  }
  if (phase >= 1 && !self->draining_) self->begin_drain();
  if (phase >= 2 && !self->stopping_) self->begin_stop();
}

void Worker::begin_drain() {
  draining_ = true;
  close_listeners();
  uv_timer_stop(&accept_pause_);
  // What clients sent before the stop (a PUBCOMP, a DISCONNECT, a retained message) is read
  // before their connections close: a completed QoS 2 flow must not resume after the restart.
  std::vector<TcpLink*> open_links;
  for (auto& link : links_) open_links.push_back(link.get());
  for (TcpLink* link : open_links) link->read_pending(kDrainReadLimit);
  if (callbacks().draining) callbacks().draining(index_);
  check_drained();
}

void Worker::check_drained() {
  if (!draining_ || drained_reported_ || !links_.empty()) return;
  drained_reported_ = true;
  pool_.worker_drained();
}

void Worker::begin_stop() {
  stopping_ = true;
  run_inbox();  // tasks posted before phase 2 closed the inbox
  for (auto& link : links_) link->force_close();
  close_own_handles();
}

void Worker::close_listeners() {
  for (auto& listener : listeners_) Listener::close(std::move(listener));
  listeners_.clear();
}

void Worker::close_own_handles() {
  if (handles_closed_) return;
  handles_closed_ = true;
  wakeup_.close();
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&check_),
                         reinterpret_cast<uv_handle_t*>(&idle_),
                         reinterpret_cast<uv_handle_t*>(&tick_),
                         reinterpret_cast<uv_handle_t*>(&accept_pause_)}) {
    uv_close(h, ignore_close);  // embedded in the Worker, which outlives the loop
  }
}

void Worker::on_check(uv_check_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  uv_idle_stop(&self->idle_);
  if (self->callbacks().hand_off) self->callbacks().hand_off(self->index_);
  // Links before end_of_turn, so it sees what the kernel did not take (back-pressure decisions).
  // flush() runs no handler code, so nothing is added to dirty_ while we walk it; links
  // dirtied by end_of_turn (held publishers read again) start the idle handle and go out at
  // the next turn, which then does not block.
  self->flushing_.swap(self->dirty_);
  for (TcpLink* link : self->flushing_) link->flush();
  self->flushing_.clear();
  const bool more_work = self->callbacks().end_of_turn && self->callbacks().end_of_turn(self->index_);
  if (more_work && !self->handles_closed_) uv_idle_start(&self->idle_, on_idle);  // poll, don't block
  self->coalesce_wake_ups();
}

void Worker::coalesce_wake_ups() {
  const std::uint64_t events = std::exchange(events_this_turn_, 0);
  const std::uint64_t bytes = std::exchange(bytes_this_turn_, 0);
  const std::uint64_t window_ns = std::uint64_t{options().wake_up_coalesce_us} * 1000;
  if (window_ns == 0) return;
  const std::uint64_t now = uv_hrtime();
  const bool dense = now - last_turn_end_ns_ < window_ns;
  last_turn_end_ns_ = now;
  // Nothing may wait for the sleep: no unflushed link, no work queued for the next turn.
  if (!dense || events == 0 || events >= kCoalesceMaxEvents || bytes >= kCoalesceMaxBytes ||
      !dirty_.empty() ||
      uv_is_active(reinterpret_cast<const uv_handle_t*>(&idle_)) || draining_ || stopping_)
    return;
  timespec pause{0, static_cast<long>(window_ns)};
  (void)::nanosleep(&pause, nullptr);  // a signal cutting it short is harmless
  counters_.coalescing_pauses.fetch_add(1, std::memory_order_relaxed);
  last_turn_end_ns_ = uv_hrtime();
}

void Worker::on_idle(uv_idle_t* /*handle*/) {}

void Worker::mark_dirty(TcpLink& link) {
  dirty_.push_back(&link);
  // A link dirtied outside the I/O phase (a close callback, say) must not wait for the next
  // event: an active idle handle makes the loop poll without blocking, so the check runs.
  if (!handles_closed_) uv_idle_start(&idle_, on_idle);
}

void Worker::destroy_link(TcpLink& link) {
  if (link.dirty()) std::erase(dirty_, &link);
  const std::size_t slot = link.slot();
  if (slot + 1 != links_.size()) {
    links_[slot] = std::move(links_.back());
    links_[slot]->set_slot(slot);
  }
  links_.pop_back();  // frees `link`
  counters_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  check_drained();
}

std::string Worker::take_buffer() {
  if (spare_buffers_.empty()) return std::string();
  std::string buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void Worker::give_buffer(std::string&& buffer) {
  // Only buffers worth keeping, and a few: what a worker's busy links use in one turn.
  if (buffer.capacity() < kMinSpareBuffer || buffer.capacity() > kMaxSpareBuffer ||
      spare_buffers_.size() >= kSpareBuffers)
    return;
  buffer.clear();
  spare_buffers_.push_back(std::move(buffer));
}

void Worker::fill_read_buffer(uv_buf_t* buf) {
  buf->base = read_buffer_.get();
  buf->len = kReadBufferSize;
}

void Worker::adopt(UniqueFd fd, const std::string& received) {
  if (draining_ || stopping_) return;  // `fd` closes: no new connections while stopping
  auto owned = std::make_unique<TcpLink>(*this);
  TcpLink& link = *owned;
  if (int rc = uv_tcp_init(&loop_, link.tcp()); rc < 0) {
    log::error("worker {}: tcp handle: {}", index_, uv_strerror(rc));
    return;
  }
  link.set_slot(links_.size());
  links_.push_back(std::move(owned));
  counters_.connections_open.fetch_add(1, std::memory_order_relaxed);
  if (int rc = uv_tcp_open(link.tcp(), fd.get()); rc < 0) {
    log::error("worker {}: cannot open accepted socket: {}", index_, uv_strerror(rc));
    link.force_close();  // `fd` is still ours and closes on return
    return;
  }
  fd.release();  // the handle owns it now

  std::unique_ptr<core::ConnectionHandler> handler;
  if (callbacks().open) handler = callbacks().open(index_, link);
  if (!handler) {
    link.close();
    return;
  }
  link.attach(std::move(handler), received);
}

void Worker::pause_accepting(int err) {
  log_accept_error(err);
  if (accepting_paused_ || draining_) return;
  accepting_paused_ = true;
  for (auto& l : listeners_) l->pause();
  uv_timer_start(&accept_pause_, on_accept_resume, kAcceptPauseMs, 0);
}

void Worker::on_accept_resume(uv_timer_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  self->accepting_paused_ = false;
  if (self->draining_) return;
  for (auto& l : self->listeners_) l->resume();
}

void Worker::log_accept_error(int err) {
  ++accept_errors_since_log_;
  std::uint64_t now = uv_now(&loop_);
  if (last_accept_log_ms_ != 0 && now - last_accept_log_ms_ < kAcceptLogIntervalMs) return;
  last_accept_log_ms_ = now;
  log::warn("worker {}: accept failed {} time(s) since last report: {}{}", index_,
            accept_errors_since_log_, std::strerror(err),
            err == EMFILE || err == ENFILE
                ? " (open file limit reached; new connections wait in the backlog)"
                : "");
  accept_errors_since_log_ = 0;
}

void Worker::on_tick(uv_timer_t* handle) {
  auto* self = static_cast<Worker*>(handle->data);
  const PoolOptions& opt = self->options();
  if (opt.tick_interval_ms != 0 && self->callbacks().tick) {
    self->callbacks().tick(self->index_);
  }
  std::uint64_t now = uv_now(&self->loop_);
  for (auto& link : self->links_) link->check_linger(now, opt.close_linger_ms);
}

}  // namespace broker::transport
