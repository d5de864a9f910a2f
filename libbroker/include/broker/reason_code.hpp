#pragma once
// MQTT reason codes (MQTT 5.0 section 2.4) as they travel on the wire. These are answers to
// clients, not library errors: every rejection picks the most precise one. For MQTT 3.1.1
// CONNACK, `to_v3_connack_code` maps them to the six 3.1.1 return codes.
//
// Thread safety: values and pure functions.
#include <cstdint>
#include <string_view>

#include "broker/export.h"

namespace broker {

enum class ReasonCode : std::uint8_t {
  Success = 0x00,  // also Normal disconnection and Granted QoS 0
  GrantedQos1 = 0x01,
  GrantedQos2 = 0x02,
  DisconnectWithWill = 0x04,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  Banned = 0x8A,
  ServerShuttingDown = 0x8B,
  BadAuthenticationMethod = 0x8C,
  KeepAliveTimeout = 0x8D,
  SessionTakenOver = 0x8E,
  TopicFilterInvalid = 0x8F,
  TopicNameInvalid = 0x90,
  PacketIdentifierInUse = 0x91,
  PacketIdentifierNotFound = 0x92,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  MessageRateTooHigh = 0x96,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  PayloadFormatInvalid = 0x99,
  RetainNotSupported = 0x9A,
  QosNotSupported = 0x9B,
  UseAnotherServer = 0x9C,
  ServerMoved = 0x9D,
  SharedSubscriptionsNotSupported = 0x9E,
  ConnectionRateExceeded = 0x9F,
  MaximumConnectTime = 0xA0,
  SubscriptionIdentifiersNotSupported = 0xA1,
  WildcardSubscriptionsNotSupported = 0xA2,
};

// Name as the specification spells it, e.g. "Malformed Packet"; "Unknown" for other values.
BROKER_EXPORT std::string_view reason_name(ReasonCode code) noexcept;

// True for codes >= 0x80 (failures).
constexpr bool is_failure(ReasonCode code) noexcept {
  return static_cast<std::uint8_t>(code) >= 0x80;
}

// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3).
enum class V3ConnackCode : std::uint8_t {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUserNameOrPassword = 4,
  NotAuthorized = 5,
};
BROKER_EXPORT V3ConnackCode to_v3_connack_code(ReasonCode code) noexcept;

}  // namespace broker
