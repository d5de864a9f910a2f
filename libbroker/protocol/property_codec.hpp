#pragma once
// Internal: reading and writing MQTT 5.0 property blocks (length + properties). One visitor,
// for_each_present, lists the fields once for the writer, the size counter and the scope check.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/decoder.hpp"
#include "protocol/properties.hpp"
#include "protocol/wire.hpp"

namespace broker::protocol {

// Reads a property block for `scope` from `r`: Property Length, then the properties. Fails with
// MalformedPacket (truncated, unknown id, bad UTF-8) or ProtocolError (not allowed in scope,
// duplicate, value out of range).
bool decode_properties(wire::Reader& r, PropertyScope scope, Properties& out, DecodeError& error);

namespace detail {
struct Vbi {
  std::uint32_t value;
};

template <typename F>
void for_each_present(const Properties& p, F&& f) {
  using Id = PropertyId;
  if (p.payload_format_indicator) f(Id::PayloadFormatIndicator, *p.payload_format_indicator);
  if (p.message_expiry_interval) f(Id::MessageExpiryInterval, *p.message_expiry_interval);
  if (p.content_type) f(Id::ContentType, std::string_view(*p.content_type));
  if (p.response_topic) f(Id::ResponseTopic, std::string_view(*p.response_topic));
  if (p.correlation_data) f(Id::CorrelationData, std::string_view(*p.correlation_data));
  for (std::uint32_t id : p.subscription_identifiers) f(Id::SubscriptionIdentifier, Vbi{id});
  if (p.session_expiry_interval) f(Id::SessionExpiryInterval, *p.session_expiry_interval);
  if (p.assigned_client_identifier) {
    f(Id::AssignedClientIdentifier, std::string_view(*p.assigned_client_identifier));
  }
  if (p.server_keep_alive) f(Id::ServerKeepAlive, *p.server_keep_alive);
  if (p.authentication_method) {
    f(Id::AuthenticationMethod, std::string_view(*p.authentication_method));
  }
  if (p.authentication_data) f(Id::AuthenticationData, std::string_view(*p.authentication_data));
  if (p.request_problem_information) {
    f(Id::RequestProblemInformation, *p.request_problem_information);
  }
  if (p.will_delay_interval) f(Id::WillDelayInterval, *p.will_delay_interval);
  if (p.request_response_information) {
    f(Id::RequestResponseInformation, *p.request_response_information);
  }
  if (p.response_information) {
    f(Id::ResponseInformation, std::string_view(*p.response_information));
  }
  if (p.server_reference) f(Id::ServerReference, std::string_view(*p.server_reference));
  if (p.reason_string) f(Id::ReasonString, std::string_view(*p.reason_string));
  if (p.receive_maximum) f(Id::ReceiveMaximum, *p.receive_maximum);
  if (p.topic_alias_maximum) f(Id::TopicAliasMaximum, *p.topic_alias_maximum);
  if (p.topic_alias) f(Id::TopicAlias, *p.topic_alias);
  if (p.maximum_qos) f(Id::MaximumQos, *p.maximum_qos);
  if (p.retain_available) f(Id::RetainAvailable, *p.retain_available);
  for (const UserProperty& up : p.user_properties) f(Id::UserProperty, up);
  if (p.maximum_packet_size) f(Id::MaximumPacketSize, *p.maximum_packet_size);
  if (p.wildcard_subscription_available) {
    f(Id::WildcardSubscriptionAvailable, *p.wildcard_subscription_available);
  }
  if (p.subscription_identifier_available) {
    f(Id::SubscriptionIdentifierAvailable, *p.subscription_identifier_available);
  }
  if (p.shared_subscription_available) {
    f(Id::SharedSubscriptionAvailable, *p.shared_subscription_available);
  }
}

template <typename W>
void write_property(W& w, PropertyId id, std::uint8_t v) { w.u8(static_cast<std::uint8_t>(id)); w.u8(v); }
template <typename W>
void write_property(W& w, PropertyId id, std::uint16_t v) { w.u8(static_cast<std::uint8_t>(id)); w.u16(v); }
template <typename W>
void write_property(W& w, PropertyId id, std::uint32_t v) { w.u8(static_cast<std::uint8_t>(id)); w.u32(v); }
template <typename W>
void write_property(W& w, PropertyId id, Vbi v) { w.u8(static_cast<std::uint8_t>(id)); w.varint(v.value); }
template <typename W>
void write_property(W& w, PropertyId id, std::string_view v) { w.u8(static_cast<std::uint8_t>(id)); w.prefixed(v); }
template <typename W>
void write_property(W& w, PropertyId id, const UserProperty& v) {
  w.u8(static_cast<std::uint8_t>(id));
  w.prefixed(v.first);
  w.prefixed(v.second);
}

template <typename W>
void write_property_list(const Properties& p, W& w) {
  for_each_present(p, [&w](PropertyId id, const auto& v) { write_property(w, id, v); });
}
}  // namespace detail

// Whether every present property is allowed in `scope`.
inline bool properties_allowed(const Properties& p, PropertyScope scope) {
  bool ok = true;
  detail::for_each_present(p, [&](PropertyId id, const auto&) {
    if (!allowed_in(id, scope)) ok = false;
  });
  return ok;
}

// Writes Property Length and the properties. A property not allowed in `scope` makes the
// writer fail (the Counter pass catches it before anything is appended).
template <typename W>
void write_properties(const Properties& p, PropertyScope scope, W& w) {
  if (!properties_allowed(p, scope)) {
    w.fail();
    return;
  }
  wire::Counter c;
  detail::write_property_list(p, c);
  if (!c.ok() || c.size() > wire::kMaxVarint) {
    w.fail();
    return;
  }
  w.varint(static_cast<std::uint32_t>(c.size()));
  detail::write_property_list(p, w);
}

}  // namespace broker::protocol
