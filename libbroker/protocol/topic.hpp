#pragma once
// Topic names and topic filters (MQTT 5.0 section 4.7, 3.1.1 section 4.7): validation,
// shared-subscription parsing and matching. Pure functions over string_views.
#include <cstddef>
#include <optional>
#include <string_view>

namespace broker::protocol {

// A topic name a client may PUBLISH to: at least one character, no '+' or '#', no U+0000.
// (UTF-8 well-formedness is checked by the decoder.)
bool valid_topic_name(std::string_view name) noexcept;

// A topic filter: at least one character; '#' only as the whole last level; '+' only as a
// whole level; no U+0000. A "$share/..." filter must also pass parse_shared_filter.
bool valid_topic_filter(std::string_view filter) noexcept;

struct SharedFilter {
  std::string_view group;   // the ShareName: non-empty, no '/', '+' or '#'
  std::string_view filter;  // the filter after "$share/<group>/": a valid, non-empty filter
};

// For "$share/<group>/<filter>" returns its parts when well formed. Returns nullopt both for a
// filter that is not shared and for a malformed shared one; is_shared_filter tells which.
std::optional<SharedFilter> parse_shared_filter(std::string_view filter) noexcept;
bool is_shared_filter(std::string_view filter) noexcept;  // starts with "$share/"
// Whether `filter` has a '+' or '#' (in a valid filter, a wildcard level).
bool has_wildcard(std::string_view filter) noexcept;

// A topic name whose first level is "$SYS" (the broker's own topics, which clients may read but
// not publish to) or "$share" (which names shared subscriptions, so no filter could match it).
bool is_reserved_topic(std::string_view topic) noexcept;

// Levels of a topic name or a valid filter ('/' count + 1); a shared filter's own filter part.
std::size_t topic_levels(std::string_view topic_or_filter) noexcept;

// Whether `filter` (valid, not shared) matches topic name `topic`. Wildcards at the first
// level do not match names that start with '$' [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace broker::protocol
