// Broker::publish, the embedding application's way in: what it refuses, and why.
#include <catch2/catch.hpp>

#include <string>

#include "broker/broker.hpp"
#include "unit/storage/store_test_util.hpp"

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

  // The 5.0 PUBLISH a subscriber gets must fit max_packet_size (1024 here). QoS 1 to "a": 1
  // byte of type, 2 of remaining length, 2 + 1 of topic, 2 of packet id, 1 of property length,
  // then the payload.
  CHECK(b.publish(message("a", std::string(1015, 'p'))));
  const auto too_big = b.publish(message("a", std::string(1016, 'p')));
  CHECK(too_big.code() == broker::Status::Code::InvalidArgument);
  CHECK(too_big.to_string().find("max_packet_size") != std::string::npos);
  // QoS 0 has no packet id: two bytes more payload fit.
  auto qos0 = message("a", std::string(1017, 'p'));
  qos0.qos = 0;
  CHECK(b.publish(qos0));
  qos0.payload.push_back('p');
  CHECK(b.publish(qos0).code() == broker::Status::Code::InvalidArgument);
  // Properties count: a user property of 4 + 4 bytes takes 1 + 2 + 4 + 2 + 4 = 13.
  auto with_property = message("a", std::string(1015 - 13, 'p'));
  with_property.user_properties = {{"kkkk", "vvvv"}};
  CHECK(b.publish(with_property));
  with_property.payload.push_back('p');
  CHECK(b.publish(with_property).code() == broker::Status::Code::InvalidArgument);

  // What a client's PUBLISH is refused for.
  const auto refused = [&](broker::Message m) { return b.publish(m).code() == broker::Status::Code::InvalidArgument; };
  auto deep = message(std::string(128, 'd') + "/x", "x");  // 2 levels: fine
  CHECK(b.publish(deep));
  std::string levels;
  for (int i = 0; i < 129; ++i) levels += i ? "/l" : "l";
  CHECK(refused(message(levels, "x")));  // limits.max_topic_levels (128)
  auto wild_response = message("a", "x");
  wild_response.response_topic = "reply/+";
  CHECK(refused(wild_response));  // [MQTT-3.3.2-14]
  auto bad_content_type = message("a", "x");
  bad_content_type.content_type = "\xc3";
  CHECK(refused(bad_content_type));
  auto bad_user_property = message("a", "x");
  bad_user_property.user_properties = {{"k", std::string("\0", 1)}};
  CHECK(refused(bad_user_property));
  auto long_correlation = message("a", "x");
  long_correlation.correlation_data = std::string(65536, 'c');  // a 2-byte length cannot say it
  CHECK(b.publish(long_correlation).to_string().find("65,535") != std::string::npos);

  b.stop();
  CHECK(b.publish(message("a", "x")).code() == broker::Status::Code::Unavailable);
}

TEST_CASE("Broker::publish keeps the order of one thread's messages across workers", "[api]") {
  // Seen through the message log, which records messages in the order workers handle them:
  // with the calls spread over workers, a later message could be handled first.
  broker::test::TempDir dir;
  broker::Options options = memory_options();
  options.workers = 4;
  options.limits.max_packet_size = 1 << 20;
  options.data_dir = dir.path();
  options.persisted_filters = {"t/#"};
  auto created = broker::Broker::create(options);
  REQUIRE(created);
  auto& b = *created.value();
  REQUIRE(b.start());
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    auto m = message("t/" + std::to_string(i % 7), std::to_string(i));
    m.qos = 0;
    REQUIRE(b.publish(m));
  }
  b.stop();
  auto records = b.read_log(1, n + 1);
  REQUIRE(records);
  REQUIRE(records.value().size() == static_cast<std::size_t>(n));
  int inversions = 0;
  for (int i = 0; i < n; ++i) inversions += records.value()[static_cast<std::size_t>(i)].message.message.payload != std::to_string(i);
  CHECK(inversions == 0);
}

TEST_CASE("Broker::create refuses options an embedder can set but nothing can mean", "[api]") {
  const auto refused = [](auto&& change) {
    broker::Options o = memory_options();
    change(o);
    auto created = broker::Broker::create(o);
    return !created && created.status().code() == broker::Status::Code::InvalidArgument;
  };
  CHECK(refused([](broker::Options& o) { o.listeners[0].host = "localhost"; }));  // numeric only
  CHECK(refused([](broker::Options& o) { o.listeners[0].host = ""; }));
  CHECK(refused([](broker::Options& o) { o.durability = static_cast<broker::Durability>(9); }));
  CHECK(refused([](broker::Options& o) { o.limits.queue_overflow = static_cast<broker::QueueOverflow>(7); }));
  CHECK(refused([](broker::Options& o) { o.log_level = static_cast<broker::LogLevel>(99); }));
  CHECK(refused([](broker::Options& o) { o.durability_rules = {{"#/x", broker::Durability::Async}}; }));
  CHECK(refused([](broker::Options& o) {
    o.durability_rules = {{"a/+", static_cast<broker::Durability>(9)}};
  }));
  CHECK(refused([](broker::Options& o) { o.store_map_size = 4096; }));
  CHECK(refused([](broker::Options& o) { o.limits.max_queued_bytes = 0; }));
  CHECK(refused([](broker::Options& o) { o.log_max_bytes = 0; }));
  CHECK(refused([](broker::Options& o) { o.message_ttl_rules = {{"v/poi", 0}}; }));
  CHECK(refused([](broker::Options& o) { o.wake_up_coalesce_us = 1001; }));  // 1 ms at most
  CHECK_FALSE(refused([](broker::Options& o) { o.wake_up_coalesce_us = 1000; }));
  CHECK_FALSE(refused([](broker::Options& o) { o.listeners[0].host = "::1"; }));
}
