#pragma once
// The rules a message's content meets whoever publishes it: a client's PUBLISH (after the
// decoder, which already checks the encoding, and after its topic alias is resolved) and a
// message from Broker::publish alike. The answer is the reason code a client would get, so the
// client path can choose between a negative acknowledgement and a disconnect, and the API
// can say which field is wrong.
//
// Thread safety: a pure function.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/reason_code.hpp"

namespace broker::core {

struct PublishFault {
  ReasonCode code;
  const char* what;  // a static sentence naming the field
};

struct PublishContent {
  std::string_view topic;
  std::string_view payload;
  std::optional<std::uint8_t> payload_format_indicator;
  std::optional<std::string_view> response_topic;
};

// Views the fields as they are kept in packets and messages; they must outlive the result.
PublishContent publish_content(std::string_view topic, std::string_view payload,
                               std::optional<std::uint8_t> payload_format_indicator,
                               const std::optional<std::string>& response_topic);

// nullopt when the content is acceptable. PayloadFormatInvalid is the one fault a client may be
// answered with a negative acknowledgement; the others are protocol violations.
std::optional<PublishFault> check_publish_content(const PublishContent& content, std::size_t max_topic_levels);

}  // namespace broker::core
