#include "support/core_harness.hpp"

#include <span>
#include <stdexcept>

#include "broker/store.hpp"

namespace broker::test {

protocol::Publish make_publish(const std::string& topic, const std::string& payload,
                               std::uint8_t qos, std::uint16_t id, bool retain) {
  protocol::Publish p;
  p.topic = topic;
  p.payload = protocol::Payload::copy_of(payload);
  p.qos = qos;
  p.packet_id = id;
  p.retain = retain;
  return p;
}

VirtualClient::VirtualClient(CoreHarness& harness, unsigned worker, protocol::ProtocolVersion version)
    : harness_(harness), worker_(worker), version_(version) {
  decoder_.set_version(version);
  handler_ = harness_.engine().worker(worker).open(*this);
}

VirtualClient::~VirtualClient() { drop(); }

void VirtualClient::write(std::string_view head, const protocol::PayloadPtr& payload) {
  if (close_requested_) return;
  std::string bytes(head);
  if (payload) bytes += *payload;
  std::span<const std::uint8_t> input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  protocol::Packet packet;
  protocol::DecodeError error;
  while (!input.empty()) {
    auto status = decoder_.next(input, packet, error);
    if (status == protocol::DecodeStatus::Error)
      throw std::runtime_error(std::string("broker sent an undecodable packet: ") + error.what);
    if (status == protocol::DecodeStatus::NeedMore) break;
    received_.push_back(std::move(packet));
  }
}

bool VirtualClient::hand_over(unsigned worker, std::string&& received) {
  if (hand_over_refused_) return false;
  // The handler that called us is replaced after it returns, as the transport does.
  retired_ = std::move(handler_);
  worker_ = worker;
  harness_.dispatcher_->post(worker, [this, bytes = std::move(received)] {
    retired_.reset();
    handler_ = harness_.engine().worker(worker_).open(*this);
    handler_->on_bytes(bytes.data(), bytes.size());
  });
  return true;
}

void VirtualClient::resume_reading() {
  if (!reading_paused_) return;
  reading_paused_ = false;
  harness_.dispatcher_->post(worker_, [this] {
    if (reading_paused_ || unread_.empty()) return;
    std::string bytes = std::move(unread_);
    unread_.clear();
    if (close_requested_ || !handler_) return;
    handler_->on_bytes(bytes.data(), bytes.size());
  });
}

void VirtualClient::feed(const std::string& bytes) {
  if (close_requested_ || !handler_) return;
  if (reading_paused_) {
    unread_ += bytes;
    harness_.settle();
    return;
  }
  handler_->on_bytes(bytes.data(), bytes.size());
  harness_.settle();
  if (close_requested_) drop();
}

void VirtualClient::send(const protocol::Packet& packet) {
  std::string bytes;
  if (!protocol::encode(packet, version_, bytes)) throw std::runtime_error("cannot encode");
  feed(bytes);
}

void VirtualClient::send_raw(const std::string& bytes) { feed(bytes); }

void VirtualClient::drop() {
  if (on_closed_sent_ || !handler_) return;
  on_closed_sent_ = true;
  handler_->on_closed();
  handler_.reset();
  harness_.settle();
}

CoreHarness::CoreHarness(Options options, unsigned workers, Store* store, std::uint64_t start_ms)
    : clock_(start_ms),
      dispatcher_(std::make_unique<ManualDispatcher>(workers)),
      engine_(std::make_unique<core::Engine>(options, workers, *dispatcher_, clock_, store)) {
  if (Status st = engine_->recover(); !st) throw std::runtime_error("recover: " + st.to_string());
  settle();
}

CoreHarness::~CoreHarness() {
  // As the broker does at shutdown: last writes out, and what is still in memory stays stored.
  for (unsigned w = 0; w < engine_->worker_count(); ++w) engine_->worker(w).flush_writes();
  engine_->keep_persisted_messages();
  if (Store* store = engine_->store()) store->flush();
}

void CoreHarness::settle() {
  if (settling_held_) return;
  // Bounded: a retained walk takes a turn per few thousand trie nodes.
  for (int round = 0; round < 10000; ++round) {
    bool walking = false;
    for (unsigned w = 0; w < engine_->worker_count(); ++w) {
      walking = engine_->worker(w).end_of_turn() || walking;
    }
    if (dispatcher_->run() == 0 && !walking) return;
  }
  throw std::runtime_error("core did not settle");
}

void CoreHarness::advance(std::uint64_t ms) {
  clock_.advance(ms);
  for (unsigned w = 0; w < engine_->worker_count(); ++w) engine_->worker(w).tick(clock_.now_ms());
  settle();
}

std::unique_ptr<VirtualClient> CoreHarness::open(protocol::ProtocolVersion version, unsigned worker) {
  return std::make_unique<VirtualClient>(*this, worker, version);
}

std::unique_ptr<VirtualClient> CoreHarness::connect(const std::string& client_id,
                                                    protocol::ProtocolVersion version,
                                                    bool clean_start, std::uint32_t session_expiry) {
  auto client = open(version);
  protocol::Connect c;
  c.version = version;
  c.client_id = client_id;
  c.clean_start = clean_start;
  c.keep_alive = 60;
  if (version == protocol::ProtocolVersion::V5 && session_expiry)
    c.properties.session_expiry_interval = session_expiry;
  client->send(c);
  auto connack = client->take<protocol::Connack>();
  if (connack.reason != ReasonCode::Success) throw std::runtime_error("CONNACK refused");
  return client;
}

}  // namespace broker::test
