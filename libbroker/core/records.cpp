#include "core/records.hpp"

namespace broker::core {

StoredMessage to_record(const Message& m) {
  StoredMessage r;
  r.id = m.id;
  r.message.topic = m.topic();
  r.message.payload = *m.payload;
  r.message.qos = m.qos;
  r.message.retain = m.retain;
  if (const auto* p = m.properties.get()) {
    r.message.payload_format_indicator = p->payload_format_indicator;
    r.message.content_type = p->content_type;
    r.message.response_topic = p->response_topic;
    r.message.correlation_data = p->correlation_data;
    r.message.user_properties = p->user_properties;
  }
  r.origin_client_id = m.origin_client_id();
  r.arrival_ms = m.arrival_ms;
  r.expires_at_ms = m.expires_at_ms;
  return r;
}

MessageRef from_record(StoredMessage&& r, MessageReleaser* releaser) {
  MessageRef message = Message::create(r.message.topic, r.origin_client_id, releaser);
  Message& m = *message;
  m.id = r.id;
  m.payload = protocol::Payload::copy_of(r.message.payload);
  m.qos = r.message.qos;
  m.retain = r.message.retain;
  protocol::Properties p;
  p.payload_format_indicator = r.message.payload_format_indicator;
  p.content_type = std::move(r.message.content_type);
  p.response_topic = std::move(r.message.response_topic);
  p.correlation_data = std::move(r.message.correlation_data);
  p.user_properties = std::move(r.message.user_properties);
  m.set_properties(std::move(p));
  m.arrival_ms = r.arrival_ms;
  m.expires_at_ms = r.expires_at_ms;
  return message;
}

StoredSession to_record(const Session& s) {
  StoredSession r;
  r.client_id = s.client_id();
  r.protocol_version = static_cast<std::uint8_t>(s.version);
  r.expiry_interval = s.expiry_interval;
  r.expires_at_ms = s.expires_at_ms;
  r.subscriptions.reserve(s.subscriptions.size());
  for (const auto& [filter, o] : s.subscriptions) {
    r.subscriptions.push_back(StoredSubscription{filter, o.qos, o.no_local, o.retain_as_published,
                                                 o.retain_handling, o.subscription_id});
  }
  if (s.will) {
    const protocol::Will& w = s.will->will;
    StoredWill sw;
    sw.message.topic = w.topic;
    sw.message.payload = *w.payload;
    sw.message.qos = w.qos;
    sw.message.retain = w.retain;
    const auto& p = w.properties;
    sw.message.message_expiry_interval = p.message_expiry_interval;
    sw.message.payload_format_indicator = p.payload_format_indicator;
    sw.message.content_type = p.content_type;
    sw.message.response_topic = p.response_topic;
    sw.message.correlation_data = p.correlation_data;
    sw.message.user_properties = p.user_properties;
    sw.delay_interval = p.will_delay_interval.value_or(0);
    sw.publish_at_ms = s.will->publish_at_ms;
    r.will = std::move(sw);
  }
  r.inbound_qos2.assign(s.inbound_qos2.begin(), s.inbound_qos2.end());
  return r;
}

StoredDelivery to_record(const std::string& client_id, const Delivery& d, DeliveryState state,
                         std::uint16_t packet_id) {
  StoredDelivery r;
  r.client_id = client_id;
  r.message_id = d.message ? d.message->id : 0;
  r.qos = d.qos;
  r.retain = d.retain;
  r.shared = d.shared;
  r.shared_tag = d.shared_tag;
  r.subscription_ids = d.subscription_ids;
  r.state = state;
  r.packet_id = packet_id;
  return r;
}

}  // namespace broker::core
