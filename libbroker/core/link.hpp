#pragma once
// Link: what the core needs from one client connection's transport (TCP today; TLS and
// WebSocket later; an in-memory VirtualLink in tests and benchmarks). The core never sees a
// socket; the transport never sees an MQTT packet.
//
// Thread safety: a Link belongs to one worker thread; every call comes from that thread.
#include <cstddef>
#include <string>
#include <string_view>

#include "protocol/packet.hpp"

namespace broker::core {

class Link {
 public:
  virtual ~Link() = default;

  // Queues `head` and then `payload` (may be null) for writing, in call order. Writes are
  // coalesced and flushed once per loop turn with one vectored write: `head` is copied into
  // the link's buffer (so callers encode into a reused scratch string), a small payload too,
  // a large one is shared, never copied. After close() or a write error, writes are silently
  // discarded.
  virtual void write(std::string_view head, const protocol::PayloadPtr& payload = nullptr) = 0;

  // Flushes what is queued, then closes the socket. The connection's handler gets
  // ConnectionHandler::on_closed() once, later, from the loop (never from inside close()).
  virtual void close() = 0;

  // Moves the socket to worker `worker` (a session lives on the worker its client id hashes
  // to). `received` holds every byte read so far, which the new worker feeds to a fresh
  // handler. The current handler gets no on_closed() and is destroyed by the transport.
  // Returns false, with the link unchanged and `received` untouched, when the socket cannot
  // move now (no file descriptor left to carry it): the caller answers the client itself.
  virtual bool hand_over(unsigned worker, std::string&& received) = 0;

  // Bytes queued and not yet accepted by the kernel (for back-pressure decisions).
  virtual std::size_t pending_bytes() const = 0;

  // Bytes the kernel accepted that the peer has not taken yet (the socket's send queue); 0
  // where no kernel is involved. A system call: read now and then, not per message.
  virtual std::size_t unsent_in_kernel() const { return 0; }
  // Bytes the peer sent that wait unread in the kernel (the receive queue), as while reading
  // is paused; 0 where no kernel is involved. A system call, like unsent_in_kernel().
  virtual std::size_t unread_in_kernel() const { return 0; }

  // Publisher back-pressure: stop taking bytes from the peer until resume_reading(); what it
  // sends meanwhile waits in the kernel, whose flow control slows the peer. The handler gets
  // no on_bytes() while paused. Idempotent; ignored once closing.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;

  // "ip:port" of the peer, for logs.
  virtual const std::string& peer() const = 0;
};

// The core's side of a connection: the transport feeds it bytes and tells it of the end.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // Bytes read from the socket, in order. May call Link::close() or Link::hand_over().
  virtual void on_bytes(const char* data, std::size_t size) = 0;
  // The socket is gone (peer closed, error, or after Link::close()). Called exactly once,
  // unless hand_over() was called. The Link is still valid during the call, not after.
  virtual void on_closed() = 0;
};

}  // namespace broker::core
