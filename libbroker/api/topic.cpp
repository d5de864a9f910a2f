// The public topic helpers (broker/topic.hpp) over the protocol layer's rules.
#include "broker/topic.hpp"

#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"

namespace broker {

bool is_valid_topic_name(std::string_view name) noexcept {
  return protocol::valid_utf8_string(name) && protocol::valid_topic_name(name);
}

bool is_valid_topic_filter(std::string_view filter) noexcept {
  if (!protocol::valid_utf8_string(filter)) return false;
  return protocol::is_shared_filter(filter) ? protocol::parse_shared_filter(filter).has_value()
                                            : protocol::valid_topic_filter(filter);
}

bool is_shared_filter(std::string_view filter) noexcept { return protocol::is_shared_filter(filter); }

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  return protocol::topic_matches(filter, topic);
}

}  // namespace broker
