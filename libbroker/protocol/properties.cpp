// Property rules of MQTT 5.0 section 2.2.2.2 and the property-block reader.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/property_codec.hpp"
#include "protocol/utf8.hpp"

namespace broker::protocol {
namespace {

constexpr std::uint32_t bit(PropertyScope s) { return 1u << static_cast<unsigned>(s); }

// User properties one packet may carry. An empty one is 5 bytes on the wire and a pair of
// strings (64 bytes) once decoded: a 16 MB PUBLISH of them would take about 200 MB to decode.
constexpr std::size_t kMaxUserProperties = 65535;

using S = PropertyScope;
constexpr std::uint32_t kPublishAndWill = bit(S::Publish) | bit(S::Will);
constexpr std::uint32_t kAcks = bit(S::Puback) | bit(S::Pubrec) | bit(S::Pubrel) | bit(S::Pubcomp);
constexpr std::uint32_t kReasonString = bit(S::Connack) | kAcks | bit(S::Suback) |
                                        bit(S::Unsuback) | bit(S::Disconnect) | bit(S::Auth);
constexpr std::uint32_t kEverywhere = kReasonString | bit(S::Connect) | kPublishAndWill |
                                      bit(S::Subscribe) | bit(S::Unsubscribe);

// The scopes each property id may appear in; 0 for ids the specification does not define.
constexpr std::uint32_t scopes_of(PropertyId id) noexcept {
  switch (id) {
    case PropertyId::PayloadFormatIndicator:
    case PropertyId::MessageExpiryInterval:
    case PropertyId::ContentType:
    case PropertyId::ResponseTopic:
    case PropertyId::CorrelationData: return kPublishAndWill;
    case PropertyId::SubscriptionIdentifier: return bit(S::Publish) | bit(S::Subscribe);
    case PropertyId::SessionExpiryInterval:
      return bit(S::Connect) | bit(S::Connack) | bit(S::Disconnect);
    case PropertyId::AssignedClientIdentifier:
    case PropertyId::ServerKeepAlive:
    case PropertyId::ResponseInformation:
    case PropertyId::MaximumQos:
    case PropertyId::RetainAvailable:
    case PropertyId::WildcardSubscriptionAvailable:
    case PropertyId::SubscriptionIdentifierAvailable:
    case PropertyId::SharedSubscriptionAvailable: return bit(S::Connack);
    case PropertyId::AuthenticationMethod:
    case PropertyId::AuthenticationData: return bit(S::Connect) | bit(S::Connack) | bit(S::Auth);
    case PropertyId::RequestProblemInformation:
    case PropertyId::RequestResponseInformation: return bit(S::Connect);
    case PropertyId::WillDelayInterval: return bit(S::Will);
    case PropertyId::ServerReference: return bit(S::Connack) | bit(S::Disconnect);
    case PropertyId::ReasonString: return kReasonString;
    case PropertyId::ReceiveMaximum:
    case PropertyId::TopicAliasMaximum:
    case PropertyId::MaximumPacketSize: return bit(S::Connect) | bit(S::Connack);
    case PropertyId::TopicAlias: return bit(S::Publish);
    case PropertyId::UserProperty: return kEverywhere;
  }
  return 0;
}

bool fail(DecodeError& error, ReasonCode reason, const char* what) {
  error.reason = reason;
  error.what = what;
  return false;
}

// Each reader reports MalformedPacket for a truncated value; the caller checks duplicates.
bool read_byte(wire::Reader& r, std::optional<std::uint8_t>& slot, bool boolean,
               DecodeError& error) {
  std::uint8_t v = 0;
  if (!r.u8(v)) return fail(error, ReasonCode::MalformedPacket, "truncated property");
  // Every one-byte property is 0 or 1 except Maximum QoS, which is also 0 or 1 [MQTT-3.2.2-9].
  if (boolean && v > 1) return fail(error, ReasonCode::ProtocolError, "property value out of range");
  slot = v;
  return true;
}

bool read_two(wire::Reader& r, std::optional<std::uint16_t>& slot, bool nonzero,
              DecodeError& error) {
  std::uint16_t v = 0;
  if (!r.u16(v)) return fail(error, ReasonCode::MalformedPacket, "truncated property");
  if (nonzero && v == 0) return fail(error, ReasonCode::ProtocolError, "property value 0 not allowed");
  slot = v;
  return true;
}

bool read_four(wire::Reader& r, std::optional<std::uint32_t>& slot, bool nonzero,
               DecodeError& error) {
  std::uint32_t v = 0;
  if (!r.u32(v)) return fail(error, ReasonCode::MalformedPacket, "truncated property");
  if (nonzero && v == 0) return fail(error, ReasonCode::ProtocolError, "property value 0 not allowed");
  slot = v;
  return true;
}

bool read_string(wire::Reader& r, std::string& out, bool utf8, DecodeError& error) {
  std::string_view v;
  if (!r.prefixed(v)) return fail(error, ReasonCode::MalformedPacket, "truncated property");
  if (utf8 && !valid_utf8_string(v)) {
    return fail(error, ReasonCode::MalformedPacket, "invalid UTF-8 in property");
  }
  out.assign(v);
  return true;
}

bool read_string(wire::Reader& r, std::optional<std::string>& slot, bool utf8,
                 DecodeError& error) {
  std::string s;
  if (!read_string(r, s, utf8, error)) return false;
  slot = std::move(s);
  return true;
}

}  // namespace

bool allowed_in(PropertyId id, PropertyScope scope) noexcept {
  return (scopes_of(id) & bit(scope)) != 0;
}

bool repeatable(PropertyId id, PropertyScope scope) noexcept {
  return id == PropertyId::UserProperty ||
         (id == PropertyId::SubscriptionIdentifier && scope == PropertyScope::Publish);
}

bool decode_properties(wire::Reader& r, PropertyScope scope, Properties& out, DecodeError& error) {
  std::uint32_t length = 0;
  if (!r.varint(length)) return fail(error, ReasonCode::MalformedPacket, "bad property length");
  wire::Reader block(std::span<const std::uint8_t>{});
  if (!r.sub(length, block)) {
    return fail(error, ReasonCode::MalformedPacket, "property length exceeds packet");
  }
  out = Properties{};
  std::uint64_t seen = 0;  // one bit per id (all ids are below 64)
  while (!block.empty()) {
    std::uint32_t raw = 0;
    if (!block.varint(raw)) return fail(error, ReasonCode::MalformedPacket, "bad property id");
    if (raw >= 64 || scopes_of(static_cast<PropertyId>(raw)) == 0) {
      return fail(error, ReasonCode::MalformedPacket, "unknown property id");
    }
    const auto id = static_cast<PropertyId>(raw);
    // "An Identifier which is not valid for its packet type" makes a Malformed Packet (2.2.2.2).
    if (!allowed_in(id, scope)) {
      return fail(error, ReasonCode::MalformedPacket, "property not allowed in this packet");
    }
    const std::uint64_t mask = std::uint64_t{1} << raw;
    if ((seen & mask) != 0 && !repeatable(id, scope)) {
      return fail(error, ReasonCode::ProtocolError, "duplicate property");
    }
    seen |= mask;
    bool ok = true;
    switch (id) {
      case PropertyId::PayloadFormatIndicator:
        ok = read_byte(block, out.payload_format_indicator, true, error);
        break;
      case PropertyId::MessageExpiryInterval:
        ok = read_four(block, out.message_expiry_interval, false, error);
        break;
      case PropertyId::ContentType: ok = read_string(block, out.content_type, true, error); break;
      case PropertyId::ResponseTopic:
        ok = read_string(block, out.response_topic, true, error);
        break;
      case PropertyId::CorrelationData:
        ok = read_string(block, out.correlation_data, false, error);
        break;
      case PropertyId::SubscriptionIdentifier: {
        std::uint32_t v = 0;
        if (!block.varint(v)) return fail(error, ReasonCode::MalformedPacket, "bad subscription identifier");
        if (v == 0) return fail(error, ReasonCode::ProtocolError, "subscription identifier 0");
        out.subscription_identifiers.push_back(v);
        break;
      }
      case PropertyId::SessionExpiryInterval:
        ok = read_four(block, out.session_expiry_interval, false, error);
        break;
      case PropertyId::AssignedClientIdentifier:
        ok = read_string(block, out.assigned_client_identifier, true, error);
        break;
      case PropertyId::ServerKeepAlive:
        ok = read_two(block, out.server_keep_alive, false, error);
        break;
      case PropertyId::AuthenticationMethod:
        ok = read_string(block, out.authentication_method, true, error);
        break;
      case PropertyId::AuthenticationData:
        ok = read_string(block, out.authentication_data, false, error);
        break;
      case PropertyId::RequestProblemInformation:
        ok = read_byte(block, out.request_problem_information, true, error);
        break;
      case PropertyId::WillDelayInterval:
        ok = read_four(block, out.will_delay_interval, false, error);
        break;
      case PropertyId::RequestResponseInformation:
        ok = read_byte(block, out.request_response_information, true, error);
        break;
      case PropertyId::ResponseInformation:
        ok = read_string(block, out.response_information, true, error);
        break;
      case PropertyId::ServerReference:
        ok = read_string(block, out.server_reference, true, error);
        break;
      case PropertyId::ReasonString:
        ok = read_string(block, out.reason_string, true, error);
        break;
      case PropertyId::ReceiveMaximum:
        ok = read_two(block, out.receive_maximum, true, error);  // 0 is a Protocol Error (3.1.2.11.3)
        break;
      case PropertyId::TopicAliasMaximum:
        ok = read_two(block, out.topic_alias_maximum, false, error);
        break;
      case PropertyId::TopicAlias:
        // Alias 0 is forbidden [MQTT-3.3.2-8]; Topic Alias Invalid is the precise answer.
        ok = read_two(block, out.topic_alias, false, error);
        if (ok && *out.topic_alias == 0) ok = fail(error, ReasonCode::TopicAliasInvalid, "topic alias 0");
        break;
      case PropertyId::MaximumQos: ok = read_byte(block, out.maximum_qos, true, error); break;
      case PropertyId::RetainAvailable:
        ok = read_byte(block, out.retain_available, true, error);
        break;
      case PropertyId::UserProperty: {
        UserProperty up;
        ok = read_string(block, up.first, true, error) && read_string(block, up.second, true, error);
        if (ok && out.user_properties.size() >= kMaxUserProperties)
          return fail(error, ReasonCode::QuotaExceeded, "more than 65,535 user properties in one packet");
        if (ok) out.user_properties.push_back(std::move(up));
        break;
      }
      case PropertyId::MaximumPacketSize:
        ok = read_four(block, out.maximum_packet_size, true, error);
        break;
      case PropertyId::WildcardSubscriptionAvailable:
        ok = read_byte(block, out.wildcard_subscription_available, true, error);
        break;
      case PropertyId::SubscriptionIdentifierAvailable:
        ok = read_byte(block, out.subscription_identifier_available, true, error);
        break;
      case PropertyId::SharedSubscriptionAvailable:
        ok = read_byte(block, out.shared_subscription_available, true, error);
        break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace broker::protocol
