#pragma once
// broker::Broker: one embeddable MQTT 3.1.1/5.0 broker instance.
//
//   auto broker = broker::Broker::create(options);   // validates options, binds nothing
//   if (!broker) ...broker.status()...
//   auto st = broker.value()->start();                 // binds listeners, starts the workers
//   ...
//   broker.value()->stop();                            // graceful: wills, sessions, sockets
//
// Thread safety: start(), stop(), wait(), publish(), stats() and listening_ports() are safe from
// any thread; they post work to the worker threads. Destroying the Broker stops it first.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "broker/export.h"
#include "broker/message.hpp"
#include "broker/options.hpp"
#include "broker/status.hpp"
#include "broker/store.hpp"

namespace broker {

// A snapshot of the broker's counters; each is a sum over the workers.
struct Stats {
  std::uint64_t connections = 0;           // currently connected clients
  std::uint64_t sessions = 0;              // sessions held, connected or not
  std::uint64_t subscriptions = 0;         // entries in the topic index
  std::uint64_t retained_messages = 0;
  std::uint64_t messages_received = 0;     // PUBLISH packets accepted from clients
  std::uint64_t messages_sent = 0;         // PUBLISH packets written to clients
  std::uint64_t messages_dropped = 0;      // queue overflow, inbox overflow, expiry
  std::uint64_t messages_expired = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t protocol_errors = 0;       // connections closed for a malformed or illegal packet
};

class BROKER_EXPORT Broker {
 public:
  // Checks `options` and builds the broker. Errors: InvalidArgument naming the bad field.
  static Result<std::unique_ptr<Broker>> create(const Options& options);
  // The checks create() makes, alone: nothing is opened or bound. Errors: as create()'s
  // InvalidArgument.
  static Status check(const Options& options);
  virtual ~Broker();

  // Binds every listener and starts the workers; returns once they accept connections.
  // Errors: IoError naming the address that could not be bound; Unavailable if started twice.
  virtual Status start() = 0;
  // Graceful shutdown: publishes the wills that a server shutdown triggers (to every client
  // still connected), then sends DISCONNECT 0x8B to 5.0 clients, stops accepting, closes every
  // socket and joins the workers.
  // Idempotent; returns when done. REQUIRES: not called from a worker thread.
  virtual void stop() = 0;
  // Blocks until stop() has finished (from any thread, or by a signal handler's request_stop()).
  virtual void wait() = 0;
  // Async-signal-safe request to stop; wait() then returns after the shutdown.
  virtual void request_stop() noexcept = 0;

  // Ports the listeners are bound to, in Options::listeners order (useful with port 0).
  virtual std::vector<std::uint16_t> listening_ports() const = 0;

  // Publishes as the broker itself (origin client id empty). Messages published from one thread
  // keep their order, as a client's do. Errors: InvalidArgument for what a client's PUBLISH
  // would be refused for (a bad topic or one deeper than Limits::max_topic_levels, QoS, a
  // property that is not valid UTF-8 or longer than 65,535 bytes, a response topic that is not
  // a topic name) or a message whose 5.0 PUBLISH would exceed Limits::max_packet_size;
  // Unavailable when not running.
  virtual Status publish(const Message& message) = 0;

  virtual Stats stats() const = 0;

  // --- the message log (messages on Options::persisted_filters, in arrival order) ---
  // A consumer reads from its committed offset, delivers the records to its database, then
  // commits the next sequence: at-least-once delivery that survives restarts on both sides.
  // Every call is safe from any thread and may block briefly on the store.
  // Errors: Unavailable with Durability::Memory (no store); the store's IoError/Corruption.

  // Up to `max` records with sequence >= `from`.
  virtual Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) = 0;
  // The sequence of the first record that arrived at or after `time_ms` (Unix ms).
  virtual Result<std::uint64_t> log_sequence_at(std::uint64_t time_ms) = 0;
  // The next sequence `consumer` wants (0 = none committed yet).
  virtual Result<std::uint64_t> consumer_offset(std::string_view consumer) = 0;
  virtual Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) = 0;

 protected:
  Broker() = default;
};

}  // namespace broker
