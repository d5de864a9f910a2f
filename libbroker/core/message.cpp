#include "core/message.hpp"

#include <algorithm>
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

namespace {

// Heap bytes of a string beyond its object (none while it fits the short-string buffer).
std::size_t heap_bytes(const std::string& s) noexcept {
  return s.capacity() > std::string().capacity() ? s.capacity() + 1 : 0;
}
std::size_t heap_bytes(const std::optional<std::string>& s) noexcept { return s ? heap_bytes(*s) : 0; }

}  // namespace

void Message::set_properties(protocol::Properties p) {
  if (!p.payload_format_indicator && !p.content_type && !p.response_topic && !p.correlation_data &&
      p.user_properties.empty()) {
    properties.reset();
    properties_bytes_ = 0;
    return;
  }
  auto out = std::make_unique<protocol::Properties>();
  out->payload_format_indicator = p.payload_format_indicator;
  out->content_type = std::move(p.content_type);
  out->response_topic = std::move(p.response_topic);
  out->correlation_data = std::move(p.correlation_data);
  out->user_properties = std::move(p.user_properties);
  // An empty user property is 5 bytes on the wire and a pair of strings here: counted as held.
  std::size_t bytes = sizeof(protocol::Properties) + heap_bytes(out->content_type) +
                      heap_bytes(out->response_topic) + heap_bytes(out->correlation_data) +
                      out->user_properties.capacity() * sizeof(protocol::UserProperty);
  for (const auto& [name, value] : out->user_properties) bytes += heap_bytes(name) + heap_bytes(value);
  properties_bytes_ = static_cast<std::uint32_t>(std::min<std::size_t>(bytes, std::numeric_limits<std::uint32_t>::max()));
  properties = std::move(out);
}

}  // namespace broker::core
