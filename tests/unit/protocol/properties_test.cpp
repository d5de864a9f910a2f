#include <catch2/catch.hpp>

#include "protocol/properties.hpp"

namespace broker::protocol {
namespace {

TEST_CASE("properties: where each property may appear (5.0 section 2.2.2.2)", "[protocol][properties]") {
  using Id = PropertyId;
  using S = PropertyScope;
  CHECK(allowed_in(Id::PayloadFormatIndicator, S::Publish));
  CHECK(allowed_in(Id::PayloadFormatIndicator, S::Will));
  CHECK_FALSE(allowed_in(Id::PayloadFormatIndicator, S::Connect));
  CHECK(allowed_in(Id::WillDelayInterval, S::Will));
  CHECK_FALSE(allowed_in(Id::WillDelayInterval, S::Publish));
  CHECK(allowed_in(Id::SubscriptionIdentifier, S::Subscribe));
  CHECK_FALSE(allowed_in(Id::SubscriptionIdentifier, S::Suback));
  CHECK(allowed_in(Id::ReasonString, S::Pubrel));
  CHECK_FALSE(allowed_in(Id::ReasonString, S::Publish));
  CHECK(allowed_in(Id::ServerReference, S::Disconnect));
  CHECK(allowed_in(Id::SessionExpiryInterval, S::Disconnect));
  CHECK_FALSE(allowed_in(Id::SessionExpiryInterval, S::Will));
  CHECK(allowed_in(Id::AuthenticationMethod, S::Auth));
  CHECK(allowed_in(Id::UserProperty, S::Unsubscribe));
  CHECK(allowed_in(Id::UserProperty, S::Will));
  CHECK_FALSE(allowed_in(static_cast<Id>(0x05), S::Publish));
}

TEST_CASE("properties: which may repeat", "[protocol][properties]") {
  CHECK(repeatable(PropertyId::UserProperty, PropertyScope::Connect));
  CHECK(repeatable(PropertyId::SubscriptionIdentifier, PropertyScope::Publish));
  CHECK_FALSE(repeatable(PropertyId::SubscriptionIdentifier, PropertyScope::Subscribe));
  CHECK_FALSE(repeatable(PropertyId::TopicAlias, PropertyScope::Publish));
}

}  // namespace
}  // namespace broker::protocol
