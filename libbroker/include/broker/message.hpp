#pragma once
// broker::Message: an application message an embedder publishes through Broker::publish.
//
// Thread safety: plain value.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace broker {

struct Message {
  std::string topic;    // a valid topic name: no wildcards
  std::string payload;  // bytes
  std::uint8_t qos = 0;  // 0, 1 or 2: the highest QoS receivers may get it with
  bool retain = false;
  // MQTT 5.0 properties carried to 5.0 receivers. Default: absent.
  std::optional<std::uint32_t> message_expiry_interval;  // seconds; also bounds offline caching
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::optional<std::uint8_t> payload_format_indicator;  // 1 = UTF-8 payload (checked)
  std::vector<std::pair<std::string, std::string>> user_properties;
};

}  // namespace broker
