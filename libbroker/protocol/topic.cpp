// Topic names and filters (MQTT 5.0 section 4.7, shared subscriptions 4.8.2).
#include "protocol/topic.hpp"

#include <algorithm>
#include <cstddef>

namespace broker::protocol {
namespace {

constexpr std::size_t kMaxTopicBytes = 65535;  // a UTF-8 string's length field [MQTT-4.7.3-3]
constexpr std::string_view kSharePrefix = "$share/";

// Checks a filter without the shared-subscription rule, so the part after "$share/<g>/" is
// judged as an ordinary filter.
bool valid_plain_filter(std::string_view filter) noexcept {
  if (filter.empty() || filter.size() > kMaxTopicBytes) return false;  // [MQTT-4.7.3-1]
  std::size_t level_start = 0;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    if (c == '\0') return false;  // [MQTT-4.7.3-2]
    if (c == '/') {
      level_start = i + 1;
      continue;
    }
    if (c == '+' || c == '#') {
      // A wildcard must be the whole level [MQTT-4.7.1-2]; '#' also the last [MQTT-4.7.1-1].
      const bool level_ends = i + 1 == filter.size() || filter[i + 1] == '/';
      if (i != level_start || !level_ends) return false;
      if (c == '#' && i + 1 != filter.size()) return false;
    }
  }
  return true;
}

// Whether `s` holds '+', '#' or U+0000. One pass (find_first_of calls memchr per byte).
bool has_wildcard_or_nul(std::string_view s) noexcept {
  for (const char c : s) {
    if (c == '+' || c == '#' || c == '\0') return true;
  }
  return false;
}

}  // namespace

bool valid_topic_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxTopicBytes) return false;
  // No wildcards in a PUBLISH topic [MQTT-3.3.2-2]; no U+0000 [MQTT-4.7.3-2].
  return !has_wildcard_or_nul(name);
}

bool is_shared_filter(std::string_view filter) noexcept {
  return filter.substr(0, kSharePrefix.size()) == kSharePrefix;
}

bool has_wildcard(std::string_view filter) noexcept {
  return filter.find_first_of("+#") != std::string_view::npos;
}

bool is_reserved_topic(std::string_view topic) noexcept {
  const std::string_view first = topic.substr(0, topic.find('/'));
  return first == "$SYS" || first == "$share";
}

std::optional<SharedFilter> parse_shared_filter(std::string_view filter) noexcept {
  if (!is_shared_filter(filter) || filter.size() > kMaxTopicBytes) return std::nullopt;
  const std::string_view rest = filter.substr(kSharePrefix.size());
  const std::size_t slash = rest.find('/');
  // The ShareName is non-empty and followed by '/' [MQTT-4.8.2-1, MQTT-4.8.2-2].
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view group = rest.substr(0, slash);
  if (has_wildcard_or_nul(group)) return std::nullopt;
  const std::string_view inner = rest.substr(slash + 1);
  if (!valid_plain_filter(inner)) return std::nullopt;
  return SharedFilter{group, inner};
}

bool valid_topic_filter(std::string_view filter) noexcept {
  if (is_shared_filter(filter)) return parse_shared_filter(filter).has_value();
  return valid_plain_filter(filter);
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  // Wildcards at the first level never match '$' names [MQTT-4.7.2-1].
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  std::size_t f = 0;  // start of the current filter level
  std::size_t t = 0;  // start of the current topic level
  for (;;) {
    const std::size_t f_end = std::min(filter.find('/', f), filter.size());
    const std::string_view f_level = filter.substr(f, f_end - f);
    if (f_level == "#") return true;  // this level and every one below, or none at all
    const std::size_t t_end = std::min(topic.find('/', t), topic.size());
    if (f_level != "+" && f_level != topic.substr(t, t_end - t)) return false;
    const bool f_last = f_end == filter.size();
    const bool t_last = t_end == topic.size();
    if (t_last) {
      // "sport/#" also matches "sport": the parent level of a trailing '#'.
      return f_last || filter.substr(f_end + 1) == "#";
    }
    if (f_last) return false;
    f = f_end + 1;
    t = t_end + 1;
  }
}

std::size_t topic_levels(std::string_view topic_or_filter) noexcept {
  if (auto shared = parse_shared_filter(topic_or_filter)) topic_or_filter = shared->filter;
  std::size_t levels = 1;
  for (char c : topic_or_filter) levels += c == '/' ? 1 : 0;
  return levels;
}

}  // namespace broker::protocol
