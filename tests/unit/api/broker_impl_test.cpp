// Broker::publish, the embedding application's way in: what it refuses, and why.
#include <catch2/catch.hpp>

#include <string>

#include "broker/broker.hpp"

namespace {

broker::Options memory_options() {
  broker::Options options;
  options.listeners[0].host = "127.0.0.1";
  options.listeners[0].port = 0;
  options.workers = 1;
  options.durability = broker::Durability::Memory;
  options.limits.max_packet_size = 1024;
  return options;
}

broker::Message message(std::string topic, std::string payload) {
  broker::Message m;
  m.topic = std::move(topic);
  m.payload = std::move(payload);
  m.qos = 1;
  return m;
}

}  // namespace

TEST_CASE("Broker::publish refuses what no client could be sent, with InvalidArgument", "[api]") {
  auto created = broker::Broker::create(memory_options());
  REQUIRE(created);
  auto& b = *created.value();
  CHECK(b.publish(message("vehicle/1/config", "x")).code() == broker::Status::Code::Unavailable);
  REQUIRE(b.start());

  CHECK(b.publish(message("vehicle/1/config", "x")));
  CHECK(b.publish(message("vehicle/+/config", "x")).code() == broker::Status::Code::InvalidArgument);
  CHECK(b.publish(message("", "x")).code() == broker::Status::Code::InvalidArgument);
  auto bad_qos = message("a", "x");
  bad_qos.qos = 3;
  CHECK(b.publish(bad_qos).code() == broker::Status::Code::InvalidArgument);
  auto not_utf8 = message("a", "\xff");
  not_utf8.payload_format_indicator = 1;
  CHECK(b.publish(not_utf8).code() == broker::Status::Code::InvalidArgument);

  // The PUBLISH must fit max_packet_size (1024 here). QoS 1 to "a": 1 byte of type, 2 of
  // remaining length, 2 + 1 of topic, 2 of packet id, then the payload.
  CHECK(b.publish(message("a", std::string(1016, 'p'))));
  const auto too_big = b.publish(message("a", std::string(1017, 'p')));
  CHECK(too_big.code() == broker::Status::Code::InvalidArgument);
  CHECK(too_big.to_string().find("max_packet_size") != std::string::npos);
  // QoS 0 has no packet id: two bytes more payload fit.
  auto qos0 = message("a", std::string(1018, 'p'));
  qos0.qos = 0;
  CHECK(b.publish(qos0));
  qos0.payload.push_back('p');
  CHECK(b.publish(qos0).code() == broker::Status::Code::InvalidArgument);

  b.stop();
  CHECK(b.publish(message("a", "x")).code() == broker::Status::Code::Unavailable);
}
