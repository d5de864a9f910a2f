#pragma once
// Helpers shared by the storage tests: a private temp directory, a visitor that collects what
// load() reports, record builders and a submit that waits for its completion.
//
// Thread safety: test-thread only, except submit_and_wait(), whose completion may run anywhere.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/store.hpp"

namespace broker::test {

// A fresh directory under the system temp dir, removed with everything in it (moved-aside
// siblings included, since the store lives one level down in path()).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "broker-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) root_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::string path() const { return (root_ / "store").string(); }

 private:
  std::filesystem::path root_;
};

class Collector final : public StoreVisitor {
 public:
  void on_message(StoredMessage&& m) override { messages.push_back(std::move(m)); order.push_back('m'); }
  void on_session(StoredSession&& s) override { sessions.push_back(std::move(s)); order.push_back('s'); }
  void on_delivery(StoredDelivery&& d) override { deliveries.push_back(std::move(d)); order.push_back('d'); }
  void on_retained(StoredMessage&& m) override { retained.push_back(std::move(m)); order.push_back('r'); }
  void on_alive(std::uint64_t time_ms) override { alive = time_ms; order.push_back('a'); }

  std::vector<StoredMessage> messages;
  std::vector<StoredSession> sessions;
  std::vector<StoredDelivery> deliveries;
  std::vector<StoredMessage> retained;
  std::optional<std::uint64_t> alive;
  std::string order;  // one letter per callback, to check the contract's order
};

inline StoredMessage make_message(std::uint64_t id, std::string topic = "t/1",
                                  std::string payload = "payload", std::uint64_t arrival_ms = 0) {
  StoredMessage m;
  m.id = id;
  m.message.topic = std::move(topic);
  m.message.payload = std::move(payload);
  m.message.qos = 1;
  m.arrival_ms = arrival_ms;
  return m;
}

inline StoredSession make_session(std::string client_id) {
  StoredSession s;
  s.client_id = std::move(client_id);
  s.protocol_version = 5;
  s.expiry_interval = 3600;
  s.subscriptions.push_back(StoredSubscription{"a/#", 1, false, false, 0, 0});
  return s;
}

inline StoredDelivery make_delivery(std::string client_id, std::uint64_t message_id) {
  StoredDelivery d;
  d.client_id = std::move(client_id);
  d.message_id = message_id;
  d.qos = 1;
  return d;
}

// Field-by-field equality (the public structs have no operator==).
inline bool equal(const Message& a, const Message& b) {
  return a.topic == b.topic && a.payload == b.payload && a.qos == b.qos && a.retain == b.retain &&
         a.message_expiry_interval == b.message_expiry_interval &&
         a.content_type == b.content_type && a.response_topic == b.response_topic &&
         a.correlation_data == b.correlation_data &&
         a.payload_format_indicator == b.payload_format_indicator &&
         a.user_properties == b.user_properties;
}
inline bool equal(const StoredMessage& a, const StoredMessage& b) {
  return a.id == b.id && equal(a.message, b.message) && a.origin_client_id == b.origin_client_id &&
         a.arrival_ms == b.arrival_ms && a.expires_at_ms == b.expires_at_ms;
}
inline bool equal(const StoredSession& a, const StoredSession& b) {
  auto sub_eq = [](const StoredSubscription& x, const StoredSubscription& y) {
    return x.filter == y.filter && x.qos == y.qos && x.no_local == y.no_local &&
           x.retain_as_published == y.retain_as_published &&
           x.retain_handling == y.retain_handling && x.subscription_id == y.subscription_id;
  };
  if (a.subscriptions.size() != b.subscriptions.size()) return false;
  for (std::size_t i = 0; i < a.subscriptions.size(); ++i) {
    if (!sub_eq(a.subscriptions[i], b.subscriptions[i])) return false;
  }
  if (a.will.has_value() != b.will.has_value()) return false;
  if (a.will && !(equal(a.will->message, b.will->message) &&
                  a.will->delay_interval == b.will->delay_interval &&
                  a.will->publish_at_ms == b.will->publish_at_ms)) {
    return false;
  }
  return a.client_id == b.client_id && a.protocol_version == b.protocol_version &&
         a.expiry_interval == b.expiry_interval && a.expires_at_ms == b.expires_at_ms &&
         a.inbound_qos2 == b.inbound_qos2;
}
inline bool equal(const StoredDelivery& a, const StoredDelivery& b) {
  return a.client_id == b.client_id && a.message_id == b.message_id && a.qos == b.qos &&
         a.retain == b.retain && a.shared == b.shared && a.shared_tag == b.shared_tag &&
         a.subscription_ids == b.subscription_ids &&
         a.state == b.state && a.packet_id == b.packet_id;
}

// Submits and waits for the completion; returns its status.
inline Status submit_and_wait(Store& store, WriteBatch batch) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.submit(std::move(batch), [promise](const Status& st) { promise->set_value(st); });
  return future.get();
}

inline Collector load_all(Store& store, Status* status = nullptr) {
  Collector c;
  Status st = store.load(c);
  if (status != nullptr) *status = st;
  return c;
}

}  // namespace broker::test
