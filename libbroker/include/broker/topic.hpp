#pragma once
// Topic names and filters as MQTT defines them (5.0 section 4.7), for embedders and tools that
// check configuration or route on their side.
//
// Thread safety: pure functions.
#include <string_view>

#include "broker/export.h"

namespace broker {

// A name a client may publish to: non-empty, UTF-8 without U+0000, no '+' or '#'.
BROKER_EXPORT bool is_valid_topic_name(std::string_view name) noexcept;
// A filter: '+' a whole level, '#' only the whole last level; "$share/<group>/<filter>" too.
BROKER_EXPORT bool is_valid_topic_filter(std::string_view filter) noexcept;
// Whether the filter starts with "$share/".
BROKER_EXPORT bool is_shared_filter(std::string_view filter) noexcept;
// Whether a valid, non-shared `filter` matches topic name `topic`.
BROKER_EXPORT bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace broker
