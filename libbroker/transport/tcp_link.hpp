#pragma once
// TcpLink: core::Link over a libuv TCP handle.
//
// Writes only queue (the head bytes and payloads under 1 KiB are copied into reused buffers,
// larger payloads are shared) and mark the link dirty; once per loop turn the worker flushes each dirty link: first
// uv_try_write() of everything queued (the common case ends here), and what the kernel did
// not take goes out in one vectored uv_write(). While that write is in flight, new writes
// collect for the next one.
//
// States: Open -> Closing (close(): flush, shutdown, close) -> Closed, or Open -> HandingOver
// (hand_over(): dup the fd; then flush, close the handle, post the copy to the target worker)
// -> Closed. EOF, a reset or a write error closes at once, dropping what is queued. The handler's
// on_closed() runs exactly once, from the handle's close callback, unless hand_over() was
// accepted; the handler is destroyed right after (never inside one of its own calls).
//
// Thread safety: owned by one worker; every call comes from that worker's thread.
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/link.hpp"
#include "protocol/packet.hpp"
#include "transport/socket.hpp"

namespace broker::transport {

class Worker;

class TcpLink final : public core::Link {
 public:
  explicit TcpLink(Worker& worker) noexcept;
  ~TcpLink() override;
  TcpLink(const TcpLink&) = delete;
  TcpLink& operator=(const TcpLink&) = delete;

  // core::Link. write() after close()/hand_over() or a write error is discarded.
  void write(std::string_view head, const protocol::PayloadPtr& payload = nullptr) override;
  // Idempotent. Stops reading now; queued data is flushed (for at most
  // PoolOptions::close_linger_ms), then the socket is shut down and closed.
  void close() override;
  // Stops reading now; data already queued is flushed first, then the socket moves. The copy
  // of the fd the move carries is made now: out of fds (or a `worker` out of range) it
  // returns false and the link stays open. Ignored (true) after close(). If the move fails
  // later (target worker stopping or its inbox full, write error before the move) the
  // connection is dropped; the handler still gets no on_closed() (as if the client vanished
  // right after the move). Both failures count in hand_overs_failed.
  bool hand_over(unsigned worker, std::string&& received) override;
  // What libuv has not written yet of the write in flight, not its whole size: the core
  // judges a reader's progress by it while a large write drains.
  std::size_t pending_bytes() const override {
    return (queue_ ? queue_->bytes : 0) + (write_ ? tcp_.write_queue_size : 0);
  }
  std::size_t unsent_in_kernel() const override;
  std::size_t unread_in_kernel() const override;
  void pause_reading() override;
  void resume_reading() override;
  // Read from the socket on each call (it is for logs): the text is valid until the next
  // call on this thread. "?" once the socket is closed.
  const std::string& peer() const override;

  // Worker side.
  uv_tcp_t* tcp() noexcept { return &tcp_; }
  // Index in the worker's link vector.
  void set_slot(std::size_t slot) { slot_ = static_cast<std::uint32_t>(slot); }
  std::size_t slot() const { return slot_; }
  // Installs the handler, feeds it `received` (if any), and starts reading if still open.
  void attach(std::unique_ptr<core::ConnectionHandler> handler, const std::string& received);
  // Once per loop turn if dirty: write what is queued, or continue a close or hand-over.
  void flush();
  // Closes the handle now, dropping queued data (errors, linger timeout, stop phase 2).
  void force_close();
  // At the start of a graceful stop: hands the handler what the kernel already holds for this
  // socket (up to `limit` bytes), so acknowledgements and messages sent before the stop count.
  void read_pending(std::size_t limit);
  // From the worker's timer: force_close() a link stuck in Closing/HandingOver too long.
  void check_linger(std::uint64_t now_ms, std::uint64_t linger_ms);
  bool dirty() const { return dirty_; }

 private:
  enum class State : std::uint8_t { Open, Closing, HandingOver, Closed };

  // One queued buffer: either an owned head or a shared payload; `offset` bytes of it are
  // already written (after a partial uv_try_write).
  struct Segment {
    std::string head;
    protocol::PayloadPtr payload;
    std::size_t offset = 0;
    const char* data() const { return (payload ? payload->data() : head.data()) + offset; }
    std::size_t size() const { return (payload ? payload->size() : head.size()) - offset; }
  };

  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_read_after_shutdown(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_close(uv_handle_t* handle);
  // The socket's send (SIOCOUTQ) or receive (SIOCINQ) queue in bytes; 0 once closed.
  std::size_t kernel_queue(unsigned long request) const;
  // After shutdown(): the peer's kernel acknowledged all output but perhaps our FIN.
  bool output_taken() const;

  uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  void mark_dirty();
  // Returns false if the link failed (and is now closing).
  bool start_write();
  void consume(std::size_t written);
  // Gives the buffers of written segments back to the worker for reuse.
  void recycle(std::vector<Segment>& segments, std::size_t count);
  void fill_bufs(const std::vector<Segment>& segments);
  void append_bytes(std::string_view bytes);
  void fail(int err, const char* what);
  void shutdown_then_close();
  // After our FIN: close now, or linger while the kernel still has output for the peer.
  void close_when_sent();
  void move_socket();

  // A uv_write the kernel could not take at once, with the buffers it owns until on_write.
  // Allocated only then: an idle connection's writes (CONNACK, PINGRESP) go out whole with
  // uv_try_write, so most links never carry the 200-byte request.
  struct WriteInFlight {
    uv_write_t req{};
    std::vector<Segment> segments;
    std::size_t bytes = 0;
  };
  // What close() and hand_over() need, made when the link starts ending.
  struct Ending {
    uv_shutdown_t shutdown_req{};
    std::uint64_t since_ms = 0;
    unsigned hand_over_target = 0;
    std::string hand_over_bytes;
    UniqueFd hand_over_fd;  // the socket's copy, which outlives our handle
  };

  Worker& worker_;
  uv_tcp_t tcp_{};
  std::unique_ptr<core::ConnectionHandler> handler_;

  std::uint32_t slot_ = 0;
  State state_ = State::Open;
  bool dirty_ = false;
  bool shutdown_started_ = false;
  bool lingering_ = false;           // close_when_sent(): waiting for the peer to take the rest
  bool suppress_on_closed_ = false;  // hand_over() accepted
  bool read_paused_ = false;         // pause_reading(): back-pressure from the core

  // Not yet handed to libuv; made by write() and freed once everything went out, so an idle
  // link holds no queue.
  struct Output {
    std::vector<Segment> segments;
    std::size_t bytes = 0;
  };
  std::unique_ptr<Output> queue_;
  std::unique_ptr<WriteInFlight> write_;  // set while a uv_write is in flight
  std::unique_ptr<Ending> ending_;        // set from close() or hand_over() on
};

}  // namespace broker::transport
