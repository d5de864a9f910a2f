#include "core/publish_rules.hpp"

#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace broker::core {

PublishContent publish_content(std::string_view topic, std::string_view payload,
                               std::optional<std::uint8_t> payload_format_indicator,
                               const std::optional<std::string>& response_topic) {
  return {.topic = topic,
          .payload = payload,
          .payload_format_indicator = payload_format_indicator,
          .response_topic = response_topic ? std::optional<std::string_view>(*response_topic) : std::nullopt};
}

std::optional<PublishFault> check_publish_content(const PublishContent& c, std::size_t max_topic_levels) {
  if (protocol::topic_levels(c.topic) > max_topic_levels)
    return PublishFault{ReasonCode::TopicNameInvalid, "topic has more levels than limits.max_topic_levels"};
  if (c.response_topic && !protocol::valid_topic_name(*c.response_topic))
    return PublishFault{ReasonCode::ProtocolError, "response topic is not a topic name"};  // [MQTT-3.3.2-14]
  if (c.payload_format_indicator.value_or(0) > 1)  // a client's is refused by the decoder
    return PublishFault{ReasonCode::ProtocolError, "payload format indicator is not 0 or 1"};
  if (c.payload_format_indicator.value_or(0) == 1 && !protocol::valid_utf8(c.payload))
    return PublishFault{ReasonCode::PayloadFormatInvalid, "payload is not UTF-8 but its payload format indicator is 1"};
  return std::nullopt;
}

}  // namespace broker::core
