#pragma once
// Drives the MQTT core in memory, with no socket and no thread: VirtualLink stands in for a
// TCP connection, ManualDispatcher runs cross-worker tasks when the test says so, FakeClock
// moves time only when told. A million virtual clients cost no file descriptor.
//
// Thread safety: everything here runs on the test's thread.
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/options.hpp"
#include "core/clock.hpp"
#include "core/engine.hpp"
#include "core/link.hpp"
#include "core/queue_dispatcher.hpp"
#include "core/worker_core.hpp"
#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

namespace broker::test {

class FakeClock final : public core::Clock {
 public:
  static constexpr std::uint64_t kStartMs = 1'700'000'000'000ull;
  explicit FakeClock(std::uint64_t start_ms = kStartMs) : now_(start_ms) {}
  std::uint64_t now_ms() const noexcept override { return now_; }
  void advance(std::uint64_t ms) { now_ += ms; }
 private:
  std::uint64_t now_;
};

// Runs the workers' cross-thread posts when the test says so, on the test's thread.
using ManualDispatcher = core::QueueDispatcher;

class CoreHarness;

// A PUBLISH as a client would send it.
protocol::Publish make_publish(const std::string& topic, const std::string& payload,
                               std::uint8_t qos = 0, std::uint16_t id = 0, bool retain = false);

// A client seen from the broker's side of a connection: what the test sends goes to the
// handler as bytes; what the broker writes is decoded back into packets.
class VirtualClient final : public core::Link {
 public:
  VirtualClient(CoreHarness& harness, unsigned worker, protocol::ProtocolVersion version);
  ~VirtualClient() override;

  // Link
  void write(std::string_view head, const protocol::PayloadPtr& payload) override;
  void close() override { close_requested_ = true; }
  bool hand_over(unsigned worker, std::string&& received) override;
  std::size_t pending_bytes() const override { return pending_bytes_; }
  std::size_t unsent_in_kernel() const override { return unsent_in_kernel_; }
  std::size_t unread_in_kernel() const override { return unread_.size(); }
  const std::string& peer() const override { return peer_; }
  // Like the kernel: what the test sends while reading is paused waits, and arrives (in a
  // task, as the next loop turn would bring it) once reading resumes.
  void pause_reading() override { reading_paused_ = true; }
  void resume_reading() override;

  // Test side.
  void send(const protocol::Packet& packet);
  void send_raw(const std::string& bytes);
  // The connection drops (network failure): the handler hears on_closed().
  void drop();
  // Packets the broker sent and the test has not taken yet.
  std::deque<protocol::Packet>& received() { return received_; }
  // Takes the next packet; fails the test (REQUIRE) if there is none or it has another type.
  template <typename T>
  T take();
  bool closed_by_broker() const { return close_requested_; }
  // A client that does not read: the broker's writes count as unsent bytes up to this.
  void set_pending_bytes(std::size_t bytes) { pending_bytes_ = bytes; }
  // What the kernel holds for a client that reads slowly (the socket's send queue).
  void set_unsent_in_kernel(std::size_t bytes) { unsent_in_kernel_ = bytes; }
  // The process is out of file descriptors: the socket cannot move to another worker.
  void refuse_hand_over() { hand_over_refused_ = true; }
  bool reading_paused() const { return reading_paused_; }
  unsigned worker() const { return worker_; }

 private:
  void feed(const std::string& bytes);
  CoreHarness& harness_;
  unsigned worker_;
  std::unique_ptr<core::ConnectionHandler> handler_;
  std::unique_ptr<core::ConnectionHandler> retired_;  // handed over, destroyed on the next task
  protocol::Decoder decoder_;
  protocol::ProtocolVersion version_;
  std::deque<protocol::Packet> received_;
  bool close_requested_ = false;
  bool on_closed_sent_ = false;
  bool reading_paused_ = false;
  std::string unread_;  // sent while reading was paused
  std::size_t pending_bytes_ = 0;
  std::size_t unsent_in_kernel_ = 0;
  bool hand_over_refused_ = false;
  std::string peer_ = "virtual";
};

class CoreHarness {
 public:
  // `store` (may be null) must outlive the harness; a new harness on the same store is a
  // restart: it recovers what the previous one persisted. Its clock starts at `start_ms`.
  explicit CoreHarness(Options options = {}, unsigned workers = 2, Store* store = nullptr,
                       std::uint64_t start_ms = FakeClock::kStartMs);
  ~CoreHarness();

  core::Engine& engine() { return *engine_; }
  FakeClock& clock() { return clock_; }
  const ManualDispatcher& dispatcher() const { return *dispatcher_; }
  // Runs end_of_turn on every worker and the queued cross-worker tasks until quiet.
  void settle();
  // While held, settle() does nothing: what one event hands to another worker stays on its
  // way, so that a test can make something else happen first (a race, made deterministic).
  void hold_settling(bool held) { settling_held_ = held; }
  // Moves time and ticks every worker, then settles.
  void advance(std::uint64_t ms);

  // A new connection on `worker` (it moves to the client id's home worker on CONNECT).
  std::unique_ptr<VirtualClient> open(protocol::ProtocolVersion version, unsigned worker = 0);
  // Opens and sends CONNECT, settles, and checks the CONNACK is a success.
  std::unique_ptr<VirtualClient> connect(const std::string& client_id,
                                         protocol::ProtocolVersion version = protocol::ProtocolVersion::V5,
                                         bool clean_start = true, std::uint32_t session_expiry = 0);

 private:
  friend class VirtualClient;
  FakeClock clock_;
  bool settling_held_ = false;
  std::unique_ptr<ManualDispatcher> dispatcher_;
  std::unique_ptr<core::Engine> engine_;
};

template <typename T>
T VirtualClient::take() {
  if (received_.empty()) throw std::runtime_error("no packet received");
  auto* p = std::get_if<T>(&received_.front());
  if (!p) throw std::runtime_error("unexpected packet type " + std::to_string(received_.front().index()));
  T value = std::move(*p);
  received_.pop_front();
  return value;
}

}  // namespace broker::test
