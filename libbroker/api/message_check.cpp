#include "api/message_check.hpp"

#include <string>

#include <fmt/format.h>

#include "core/publish_rules.hpp"
#include "protocol/encoder.hpp"
#include "protocol/properties.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace broker::api {

Status check_message(const Message& m, const Limits& limits) {
  if (!protocol::valid_topic_name(m.topic) || !protocol::valid_utf8_string(m.topic))
    return Status::invalid_argument("topic is not a valid topic name");
  if (m.qos > 2) return Status::invalid_argument("qos must be 0, 1 or 2");
  const auto content = core::publish_content(m.topic, m.payload, m.payload_format_indicator, m.response_topic);
  if (auto fault = core::check_publish_content(content, limits.max_topic_levels))
    return Status::invalid_argument(fault->what);
  // What the decoder checks in a client's packet.
  if (m.content_type && !protocol::valid_utf8_string(*m.content_type))
    return Status::invalid_argument("content_type is not a UTF-8 string");
  if (m.response_topic && !protocol::valid_utf8_string(*m.response_topic))
    return Status::invalid_argument("response_topic is not a UTF-8 string");
  for (const auto& [name, value] : m.user_properties) {
    if (!protocol::valid_utf8_string(name) || !protocol::valid_utf8_string(value))
      return Status::invalid_argument("a user property is not a UTF-8 string pair");
  }

  // The 5.0 encoding is the larger one: what a subscriber gets, before its per-receiver
  // subscription identifiers and alias. Encoding also refuses strings over 65,535 bytes.
  protocol::Properties p;
  p.payload_format_indicator = m.payload_format_indicator;
  p.message_expiry_interval = m.message_expiry_interval;
  p.content_type = m.content_type;
  p.response_topic = m.response_topic;
  p.correlation_data = m.correlation_data;
  p.user_properties = m.user_properties;
  protocol::PublishHeader header;
  header.topic = m.topic;
  header.qos = m.qos;
  header.packet_id = m.qos > 0 ? 1 : 0;
  header.properties = &p;
  header.payload_size = m.payload.size();
  std::string head;
  if (!protocol::encode_publish_head(header, protocol::ProtocolVersion::V5, head))
    return Status::invalid_argument(
        "message cannot be encoded: a property longer than 65,535 bytes, or larger than the MQTT "
        "maximum packet size");
  const std::uint64_t packet_size = head.size() + m.payload.size();
  if (packet_size > limits.max_packet_size)
    return Status::invalid_argument(fmt::format("a PUBLISH of {} bytes exceeds max_packet_size ({} bytes)",
                                                packet_size, limits.max_packet_size));
  return Status::ok();
}

}  // namespace broker::api
