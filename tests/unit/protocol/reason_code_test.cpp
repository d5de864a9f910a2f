#include <catch2/catch.hpp>

#include "broker/reason_code.hpp"

namespace broker {
namespace {

TEST_CASE("reason_code: names as the specification spells them", "[protocol][reason_code]") {
  CHECK(reason_name(ReasonCode::Success) == "Success");
  CHECK(reason_name(ReasonCode::MalformedPacket) == "Malformed Packet");
  CHECK(reason_name(ReasonCode::WildcardSubscriptionsNotSupported) == "Wildcard Subscriptions not supported");
  CHECK(reason_name(static_cast<ReasonCode>(0x03)) == "Unknown");
  CHECK(reason_name(static_cast<ReasonCode>(0xFF)) == "Unknown");
}

TEST_CASE("reason_code: 3.1.1 CONNACK return codes", "[protocol][reason_code]") {
  CHECK(to_v3_connack_code(ReasonCode::Success) == V3ConnackCode::Accepted);
  CHECK(to_v3_connack_code(ReasonCode::UnsupportedProtocolVersion) == V3ConnackCode::UnacceptableProtocolVersion);
  CHECK(to_v3_connack_code(ReasonCode::ClientIdentifierNotValid) == V3ConnackCode::IdentifierRejected);
  CHECK(to_v3_connack_code(ReasonCode::ServerUnavailable) == V3ConnackCode::ServerUnavailable);
  CHECK(to_v3_connack_code(ReasonCode::ServerBusy) == V3ConnackCode::ServerUnavailable);
  CHECK(to_v3_connack_code(ReasonCode::BadUserNameOrPassword) == V3ConnackCode::BadUserNameOrPassword);
  CHECK(to_v3_connack_code(ReasonCode::NotAuthorized) == V3ConnackCode::NotAuthorized);
  CHECK(to_v3_connack_code(ReasonCode::Banned) == V3ConnackCode::NotAuthorized);
  CHECK(to_v3_connack_code(ReasonCode::MalformedPacket) == V3ConnackCode::ServerUnavailable);
  CHECK(is_failure(ReasonCode::UnspecifiedError));
  CHECK_FALSE(is_failure(ReasonCode::ReAuthenticate));
}

}  // namespace
}  // namespace broker
