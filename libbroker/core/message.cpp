#include "core/message.hpp"

namespace broker::core {

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
