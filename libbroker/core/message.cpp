#include "core/message.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace broker::core {

MessageRef Message::create(std::string_view topic, std::string_view origin_client_id,
                           MessageReleaser* releaser) {
  constexpr std::size_t kMax = std::numeric_limits<std::uint32_t>::max();
  if (topic.size() > kMax || origin_client_id.size() > kMax) throw std::length_error("topic or client id too long");
  auto* message = new_with_trailing<Message>(topic.size() + origin_client_id.size(),
                                             static_cast<std::uint32_t>(topic.size()),
                                             static_cast<std::uint32_t>(origin_client_id.size()), releaser);
  char* text = reinterpret_cast<char*>(message + 1);
  if (!topic.empty()) std::memcpy(text, topic.data(), topic.size());
  if (!origin_client_id.empty()) std::memcpy(text + topic.size(), origin_client_id.data(), origin_client_id.size());
  return MessageRef::adopt(message);
}

void Message::destroy(const Message* message) noexcept { delete_with_trailing(message); }

std::unique_ptr<const protocol::Properties> forwarded_properties(protocol::Properties p) {
  if (!p.payload_format_indicator && !p.content_type && !p.response_topic && !p.correlation_data &&
      p.user_properties.empty())
    return nullptr;
  auto out = std::make_unique<protocol::Properties>();
  out->payload_format_indicator = p.payload_format_indicator;
  out->content_type = std::move(p.content_type);
  out->response_topic = std::move(p.response_topic);
  out->correlation_data = std::move(p.correlation_data);
  out->user_properties = std::move(p.user_properties);
  return out;
}

}  // namespace broker::core
