#include "transport/tcp_link.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "transport/socket.hpp"
#include "transport/worker.hpp"
#include "util/log.hpp"

namespace broker::transport {

namespace {
// What a hand-over carries to the target worker. Shared because std::function must be
// copyable; whoever drops the last reference (the task after running, or a refused post)
// closes an fd nobody adopted.
struct MovedSocket {
  UniqueFd fd;
  std::string received;
};
}  // namespace

TcpLink::TcpLink(Worker& worker) noexcept : worker_(worker) { tcp_.data = this; }

TcpLink::~TcpLink() = default;

const std::string& TcpLink::peer() const {
  thread_local std::string text;
  uv_os_fd_t fd = -1;
  // peer_name() answers "?" for a closed socket too.
  text = peer_name(uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) == 0 ? fd : -1);
  return text;
}

void TcpLink::attach(std::unique_ptr<core::ConnectionHandler> handler,
                     const std::string& received) {
  handler_ = std::move(handler);
  if (!received.empty() && state_ == State::Open) {
    handler_->on_bytes(received.data(), received.size());
  }
  if (state_ != State::Open || read_paused_) return;
  if (int rc = uv_read_start(stream(), on_alloc, on_read); rc < 0) fail(rc, "read start");
}

std::size_t TcpLink::kernel_queue(unsigned long request) const {
  uv_os_fd_t fd = -1;
  int queued = 0;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return 0;
  if (::ioctl(fd, request, &queued) != 0 || queued < 0) return 0;
  return static_cast<std::size_t>(queued);
}

std::size_t TcpLink::unsent_in_kernel() const { return kernel_queue(SIOCOUTQ); }

std::size_t TcpLink::unread_in_kernel() const { return kernel_queue(SIOCINQ); }

void TcpLink::pause_reading() {
  if (read_paused_) return;
  read_paused_ = true;
  // Inside on_read this also ends libuv's read loop for this socket: nothing more is read.
  if (state_ == State::Open && handler_) uv_read_stop(stream());
}

void TcpLink::resume_reading() {
  if (!read_paused_) return;
  read_paused_ = false;
  if (state_ != State::Open || !handler_) return;
  if (int rc = uv_read_start(stream(), on_alloc, on_read); rc < 0) fail(rc, "read start");
}

namespace {
// Payloads below this size are copied into the link's byte buffer: a copied byte costs less
// than a 56-byte segment holding a shared pointer, and the flush needs fewer iovecs. Larger
// payloads stay shared with every other receiver.
constexpr std::size_t kCopyPayloadBelow = 1024;
// One coalesced buffer grows up to this size before a new one starts.
constexpr std::size_t kCoalesceLimit = 64 * 1024;
}  // namespace

void TcpLink::append_bytes(std::string_view bytes) {
  auto& queue = queue_->segments;
  if (queue.empty() || queue.back().payload ||
      queue.back().head.size() + bytes.size() > kCoalesceLimit) {
    // A warm buffer from the worker: no growth by doubling, no large malloc/free per turn.
    queue.push_back(Segment{worker_.take_buffer(), nullptr, 0});
  }
  queue.back().head.append(bytes);
}

void TcpLink::write(std::string_view head, const protocol::PayloadPtr& payload) {
  if (state_ != State::Open) return;
  const bool has_payload = payload && !payload->empty();
  if (!head.empty() || has_payload) {
    if (!queue_) queue_ = std::make_unique<Output>();
    if (!head.empty()) {
      queue_->bytes += head.size();
      append_bytes(head);
    }
    if (has_payload) {
      queue_->bytes += payload->size();
      if (payload->size() < kCopyPayloadBelow) {
        append_bytes(*payload);
      } else {
        queue_->segments.push_back(Segment{std::string(), payload, 0});
      }
    }
  }
  mark_dirty();
}

void TcpLink::recycle(std::vector<Segment>& segments, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!segments[i].payload) worker_.give_buffer(std::move(segments[i].head));
  }
}

void TcpLink::close() {
  if (state_ != State::Open) return;
  state_ = State::Closing;
  ending_ = std::make_unique<Ending>();
  ending_->since_ms = uv_now(&worker_.loop());
  uv_read_stop(stream());
  mark_dirty();  // the flush at the end of this turn continues the close
}

bool TcpLink::hand_over(unsigned worker, std::string&& received) {
  if (state_ != State::Open) return true;
  WorkerCounters& counters = worker_.counters();
  if (worker >= worker_.pool().worker_count()) {
    counters.hand_overs_failed.fetch_add(1, std::memory_order_relaxed);
    log::error("{}: hand-over to worker {} of {}: no such worker", peer(), worker,
               worker_.pool().worker_count());
    return false;
  }
  // The copy is made before anything changes: at the process's fd limit the client can still
  // be told why it is refused, on the socket it has.
  uv_os_fd_t fd = -1;
  UniqueFd copy;
  int err = EBADF;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
    copy = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    err = errno;  // before peer() below, a system call of its own
  }
  if (!copy.valid()) {
    counters.hand_overs_failed.fetch_add(1, std::memory_order_relaxed);
    log::warn("{}: hand-over to worker {} failed: cannot duplicate the socket: {}", peer(), worker,
              std::strerror(err));
    return false;
  }
  state_ = State::HandingOver;
  suppress_on_closed_ = true;
  ending_ = std::make_unique<Ending>();
  ending_->since_ms = uv_now(&worker_.loop());
  ending_->hand_over_target = worker;
  ending_->hand_over_bytes = std::move(received);
  ending_->hand_over_fd = std::move(copy);
  uv_read_stop(stream());  // later bytes stay in the kernel for the new worker to read
  mark_dirty();
  return true;
}

void TcpLink::mark_dirty() {
  if (dirty_) return;
  dirty_ = true;
  worker_.mark_dirty(*this);
}

void TcpLink::flush() {
  dirty_ = false;
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
  if (write_) return;  // on_write marks the link dirty again
  if (queue_) {
    if (!start_write()) return;
    if (write_) return;
  }
  if (state_ == State::Closing) {
    shutdown_then_close();
  } else if (state_ == State::HandingOver) {
    move_socket();
  }
}

void TcpLink::fill_bufs(const std::vector<Segment>& segments) {
  auto& bufs = worker_.scratch_bufs();
  bufs.clear();
  for (const Segment& s : segments) {
    bufs.push_back(uv_buf_init(const_cast<char*>(s.data()), static_cast<unsigned>(s.size())));
  }
}

bool TcpLink::start_write() {
  fill_bufs(queue_->segments);
  auto& bufs = worker_.scratch_bufs();
  int n = uv_try_write(stream(), bufs.data(), static_cast<unsigned>(bufs.size()));
  if (n == UV_EAGAIN) {
    n = 0;
  } else if (n < 0) {
    fail(n, "write");
    return false;
  }
  worker_.counters().bytes_written.fetch_add(static_cast<std::uint64_t>(n),
                                             std::memory_order_relaxed);
  consume(static_cast<std::size_t>(n));
  if (queue_->segments.empty()) {
    queue_.reset();
    return true;
  }

  // The rest goes in one uv_write; `write_` keeps the buffers alive until on_write.
  auto write = std::make_unique<WriteInFlight>();
  write->req.data = this;
  write->segments.swap(queue_->segments);
  write->bytes = queue_->bytes;
  queue_.reset();
  fill_bufs(write->segments);
  int rc = uv_write(&write->req, stream(), bufs.data(), static_cast<unsigned>(bufs.size()),
                    on_write);
  if (rc < 0) {
    fail(rc, "write");
    return false;
  }
  write_ = std::move(write);
  return true;
}

void TcpLink::consume(std::size_t written) {
  queue_->bytes -= written;
  auto& queue = queue_->segments;
  std::size_t done = 0;
  while (done < queue.size() && written > 0) {
    std::size_t size = queue[done].size();
    if (written < size) {
      queue[done].offset += written;
      break;
    }
    written -= size;
    ++done;
  }
  recycle(queue, done);
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(done));
}

void TcpLink::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<TcpLink*>(req->data);
  // libuv is done with the request and its buffers.
  std::unique_ptr<WriteInFlight> done = std::move(self->write_);
  if (status == UV_ECANCELED) return;  // the handle is closing
  if (status < 0) {
    self->fail(status, "write");
    return;
  }
  self->worker_.counters().bytes_written.fetch_add(done->bytes, std::memory_order_relaxed);
  self->recycle(done->segments, done->segments.size());
  if (self->queue_ || self->state_ != State::Open) self->mark_dirty();
}

void TcpLink::shutdown_then_close() {
  if (shutdown_started_) return;
  shutdown_started_ = true;
  // Shutdown sends FIN after everything written.
  ending_->shutdown_req.data = this;  // freed with the link, after its callback ran
  if (uv_shutdown(&ending_->shutdown_req, stream(), on_shutdown) < 0) force_close();
}

void TcpLink::on_shutdown(uv_shutdown_t* req, int status) {
  if (status == UV_ECANCELED) return;  // already closing
  auto* self = static_cast<TcpLink*>(req->data);
  if (status < 0) {
    self->force_close();
    return;
  }
  self->close_when_sent();
}

bool TcpLink::output_taken() const {
  // After shutdown() the send queue also counts our FIN, one unit of sequence space. Only the
  // FIN left means the peer's kernel holds every byte; closing now cannot discard them (Linux
  // keeps received data readable after an RST), and waiting for the FIN's acknowledgement cost
  // every ordinary disconnect two epoll changes, a read and a loop turn.
  return unsent_in_kernel() <= 1;
}

void TcpLink::close_when_sent() {
  // Closing a socket with unread input makes the kernel answer with RST and throw away what it
  // still has to send: the last messages and the DISCONNECT with its reason code, for a client
  // that is behind reading and still sending. So while output is unacknowledged, the link
  // reads and discards until the peer closes, the output is taken, or the linger time runs out
  // (check_linger).
  if (output_taken() ||
      uv_read_start(stream(), on_alloc, on_read_after_shutdown) < 0) {
    force_close();
    return;
  }
  lingering_ = true;
}

void TcpLink::on_read_after_shutdown(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/) {
  auto* self = static_cast<TcpLink*>(stream->data);
  if (nread < 0 || self->output_taken()) self->force_close();  // end of stream, error, done
}

void TcpLink::move_socket() {
  WorkerCounters& counters = worker_.counters();
  auto moved = std::make_shared<MovedSocket>();
  moved->fd = std::move(ending_->hand_over_fd);
  moved->received = std::move(ending_->hand_over_bytes);
  const unsigned target_index = ending_->hand_over_target;
  // Closing our handle first removes the fd from this loop's epoll set; only then may the
  // other loop watch the same socket.
  force_close();
  Worker* target = &worker_.sibling(target_index);
  // Counted first: the new worker may serve the client before this thread runs on.
  counters.hand_overs.fetch_add(1, std::memory_order_relaxed);
  bool posted = worker_.pool().post(target_index, [target, moved] {
    target->adopt(std::move(moved->fd), moved->received);
  });
  if (!posted) {
    counters.hand_overs.fetch_sub(1, std::memory_order_relaxed);
    counters.hand_overs_failed.fetch_add(1, std::memory_order_relaxed);
    log::warn("{}: hand-over to worker {} failed: worker stopping or inbox full; dropping it",
              peer_name(moved->fd.get()), target_index);  // our handle is closed by now
  }
}

void TcpLink::fail(int err, const char* what) {
  if (log::enabled(LogLevel::Debug)) log::debug("{}: {} error: {}", peer(), what, uv_strerror(err));
  if (state_ == State::HandingOver) {
    worker_.counters().hand_overs_failed.fetch_add(1, std::memory_order_relaxed);
  }
  force_close();
}

void TcpLink::force_close() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (uv_is_closing(handle)) return;
  state_ = State::Closed;
  queue_.reset();
  uv_read_stop(stream());
  uv_close(handle, on_close);
}

void TcpLink::read_pending(std::size_t limit) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return;
  std::size_t taken = 0;
  // A held publisher stays held; a link that closed or moved on reads nothing more.
  while (taken < limit && state_ == State::Open && handler_ && !read_paused_) {
    uv_buf_t buf;
    worker_.fill_read_buffer(&buf);
    ssize_t n = ::recv(fd, buf.base, std::min<std::size_t>(buf.len, limit - taken), MSG_DONTWAIT);
    if (n <= 0) return;  // nothing more, end of stream or an error: the drain closes it anyway
    taken += static_cast<std::size_t>(n);
    worker_.counters().bytes_read.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    handler_->on_bytes(buf.base, static_cast<std::size_t>(n));
  }
}

void TcpLink::check_linger(std::uint64_t now_ms, std::uint64_t linger_ms) {
  if (state_ != State::Closing && state_ != State::HandingOver) return;
  if (lingering_ && output_taken()) {  // the peer took everything and reads no more
    force_close();
    return;
  }
  if (now_ms - ending_->since_ms < linger_ms) return;
  if (log::enabled(LogLevel::Debug))
    log::debug("{}: peer did not take {} queued bytes within {} ms; closing", peer(),
               pending_bytes(), linger_ms);
  if (state_ == State::HandingOver) {
    worker_.counters().hand_overs_failed.fetch_add(1, std::memory_order_relaxed);
  }
  force_close();
}

void TcpLink::on_alloc(uv_handle_t* handle, std::size_t /*suggested*/, uv_buf_t* buf) {
  // One buffer per worker: on_bytes() is synchronous, so it is free again when on_read ends.
  static_cast<TcpLink*>(handle->data)->worker_.fill_read_buffer(buf);
}

void TcpLink::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpLink*>(stream->data);
  if (nread > 0) {
    self->worker_.counters().bytes_read.fetch_add(static_cast<std::uint64_t>(nread),
                                                  std::memory_order_relaxed);
    // After close() or hand_over() from an earlier on_bytes, nothing more is delivered.
    if (self->state_ != State::Open || !self->handler_) return;
    self->worker_.note_read(static_cast<std::size_t>(nread));
    self->handler_->on_bytes(buf->base, static_cast<std::size_t>(nread));
    return;
  }
  if (nread == 0) return;  // EAGAIN: nothing to read after all
  int err = static_cast<int>(nread);
  if (err == UV_EOF || err == UV_ECONNRESET) {
    self->force_close();
  } else {
    self->fail(err, "read");
  }
}

void TcpLink::on_close(uv_handle_t* handle) {
  auto* self = static_cast<TcpLink*>(handle->data);
  self->state_ = State::Closed;
  // Move the handler out first: during on_closed() the link is still valid, but a write or
  // close from the handler finds it closed.
  std::unique_ptr<core::ConnectionHandler> handler = std::move(self->handler_);
  if (handler && !self->suppress_on_closed_) handler->on_closed();
  handler.reset();
  self->worker_.destroy_link(*self);  // frees self
}

}  // namespace broker::transport
