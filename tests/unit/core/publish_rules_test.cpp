// check_publish_content: the reason code each content fault gets, client and API alike.
#include "core/publish_rules.hpp"

#include <optional>
#include <string>

#include <catch2/catch.hpp>

using broker::ReasonCode;
using broker::core::check_publish_content;
using broker::core::publish_content;

namespace {

std::optional<ReasonCode> fault_of(const std::string& topic, const std::string& payload,
                                   std::optional<std::uint8_t> format,
                                   const std::optional<std::string>& response_topic = std::nullopt) {
  auto fault = check_publish_content(publish_content(topic, payload, format, response_topic), 3);
  if (!fault) return std::nullopt;
  CHECK(fault->what != nullptr);
  return fault->code;
}

}  // namespace

TEST_CASE("check_publish_content accepts what MQTT allows", "[publish_rules]") {
  CHECK_FALSE(fault_of("a/b/c", "", std::nullopt));
  CHECK_FALSE(fault_of("a/b/c", "\xff", 0));                // format 0: bytes are opaque
  CHECK_FALSE(fault_of("a", "caf\xc3\xa9", 1));
  CHECK_FALSE(fault_of("a", std::string("\0", 1), 1));      // U+0000 is well-formed in a payload
  CHECK_FALSE(fault_of("a", "", std::nullopt, "reply/x"));
}

TEST_CASE("check_publish_content names each fault with its reason code", "[publish_rules]") {
  CHECK(fault_of("a/b/c/d", "", std::nullopt) == ReasonCode::TopicNameInvalid);  // 4 levels > 3
  CHECK(fault_of("a", "", std::nullopt, "reply/+") == ReasonCode::ProtocolError);  // [MQTT-3.3.2-14]
  CHECK(fault_of("a", "", std::nullopt, "reply/#") == ReasonCode::ProtocolError);
  CHECK(fault_of("a", "", 2) == ReasonCode::ProtocolError);
  CHECK(fault_of("a", "\xc3\x28", 1) == ReasonCode::PayloadFormatInvalid);
  CHECK(fault_of("a", "\xed\xa0\x80", 1) == ReasonCode::PayloadFormatInvalid);  // a surrogate
}
