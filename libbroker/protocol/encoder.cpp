// The MQTT encoder. Every packet is written by one template run twice: first with a Counter
// (size and encodability, nothing appended), then with an Appender into the caller's string.
#include "protocol/encoder.hpp"

#include <string_view>
#include <type_traits>

#include "protocol/property_codec.hpp"
#include "protocol/wire.hpp"

namespace broker::protocol {
namespace {

std::string_view payload_view(const PayloadPtr& p) noexcept {
  return p ? std::string_view(*p) : std::string_view();
}

bool empty_properties(const Properties& p) { return p == Properties{}; }

template <typename W>
void body(const Connect& c, ProtocolVersion, W& w) {
  const bool v5 = c.version == ProtocolVersion::V5;
  if (!v5 && c.password && !c.username) return w.fail();  // 3.1.1 cannot say this [MQTT-3.1.2-22]
  if (c.will && c.will->qos > 2) return w.fail();
  w.prefixed(c.version == ProtocolVersion::V31 ? "MQIsdp" : "MQTT");
  w.u8(static_cast<std::uint8_t>(c.version));
  std::uint8_t flags = c.clean_start ? 0x02 : 0x00;
  if (c.will) {
    flags = static_cast<std::uint8_t>(flags | 0x04 | (c.will->qos << 3) | (c.will->retain ? 0x20 : 0));
  }
  if (c.password) flags |= 0x40;
  if (c.username) flags |= 0x80;
  w.u8(flags);
  w.u16(c.keep_alive);
  if (v5) write_properties(c.properties, PropertyScope::Connect, w);
  w.prefixed(c.client_id);
  if (c.will) {
    if (v5) write_properties(c.will->properties, PropertyScope::Will, w);
    w.prefixed(c.will->topic);
    w.prefixed(payload_view(c.will->payload));
  }
  if (c.username) w.prefixed(*c.username);
  if (c.password) w.prefixed(*c.password);
}

template <typename W>
void body(const Connack& c, ProtocolVersion v, W& w) {
  w.u8(c.session_present ? 1 : 0);
  if (v != ProtocolVersion::V5) {
    w.u8(static_cast<std::uint8_t>(to_v3_connack_code(c.reason)));
    return;
  }
  w.u8(static_cast<std::uint8_t>(c.reason));
  write_properties(c.properties, PropertyScope::Connack, w);
}

PublishHeader header_of(const Publish& p) noexcept {
  return PublishHeader{p.topic, p.qos, p.retain, p.dup, p.packet_id, &p.properties,
                       payload_view(p.payload).size()};
}

// Everything of a PUBLISH but its payload.
template <typename W>
void publish_head(const PublishHeader& p, ProtocolVersion v, W& w) {
  if (p.qos > 2) return w.fail();
  w.prefixed(p.topic);
  if (p.qos > 0) w.u16(p.packet_id);
  if (v != ProtocolVersion::V5) return;
  if (p.properties) {
    write_properties(*p.properties, PropertyScope::Publish, w);
  } else {
    w.u8(0);  // property length 0
  }
}

template <typename W>
void body(const Publish& p, ProtocolVersion v, W& w) {
  publish_head(header_of(p), v, w);
  w.raw(payload_view(p.payload));
}

// 5.0 short forms: no reason code and no properties for a plain Success (3.4.2.1), no
// property length when there are no properties (3.4.2.2.1).
template <typename W>
void body(const Ack& a, ProtocolVersion v, W& w) {
  w.u16(a.packet_id);
  if (v != ProtocolVersion::V5) return;
  const bool no_props = empty_properties(a.properties);
  if (a.reason == ReasonCode::Success && no_props) return;
  w.u8(static_cast<std::uint8_t>(a.reason));
  if (!no_props) write_properties(a.properties, static_cast<PropertyScope>(a.type), w);
}

template <typename W>
void body(const Subscribe& s, ProtocolVersion v, W& w) {
  const bool v5 = v == ProtocolVersion::V5;
  w.u16(s.packet_id);
  if (v5) write_properties(s.properties, PropertyScope::Subscribe, w);
  for (const SubscribeEntry& e : s.entries) {
    if (e.qos > 2 || e.retain_handling > 2) return w.fail();
    w.prefixed(e.filter);
    std::uint8_t options = e.qos;
    if (v5) {
      options = static_cast<std::uint8_t>(options | (e.no_local ? 0x04 : 0) |
                                          (e.retain_as_published ? 0x08 : 0) |
                                          (e.retain_handling << 4));
    }
    w.u8(options);
  }
}

// 3.1.1 SUBACK knows 0x00-0x02 and 0x80; every failure becomes 0x80.
std::uint8_t v3_suback_code(ReasonCode r) noexcept {
  const auto code = static_cast<std::uint8_t>(r);
  return code <= 0x02 ? code : 0x80;
}

template <typename W>
void body(const Suback& s, ProtocolVersion v, W& w) {
  const bool v5 = v == ProtocolVersion::V5;
  w.u16(s.packet_id);
  if (v5) write_properties(s.properties, PropertyScope::Suback, w);
  for (ReasonCode r : s.reasons) w.u8(v5 ? static_cast<std::uint8_t>(r) : v3_suback_code(r));
}

template <typename W>
void body(const Unsubscribe& u, ProtocolVersion v, W& w) {
  w.u16(u.packet_id);
  if (v == ProtocolVersion::V5) write_properties(u.properties, PropertyScope::Unsubscribe, w);
  for (const std::string& f : u.filters) w.prefixed(f);
}

template <typename W>
void body(const Unsuback& u, ProtocolVersion v, W& w) {
  w.u16(u.packet_id);
  if (v != ProtocolVersion::V5) return;
  write_properties(u.properties, PropertyScope::Unsuback, w);
  for (ReasonCode r : u.reasons) w.u8(static_cast<std::uint8_t>(r));
}

template <typename W>
void body(const Pingreq&, ProtocolVersion, W&) {}
template <typename W>
void body(const Pingresp&, ProtocolVersion, W&) {}

// Remaining length 0 for a plain Success, a lone reason code without properties (3.14.2.2.1).
template <typename W>
void body(const Disconnect& d, ProtocolVersion v, W& w) {
  if (v != ProtocolVersion::V5) return;
  const bool no_props = empty_properties(d.properties);
  if (d.reason == ReasonCode::Success && no_props) return;
  w.u8(static_cast<std::uint8_t>(d.reason));
  if (!no_props) write_properties(d.properties, PropertyScope::Disconnect, w);
}

// AUTH may drop both fields only together (3.15.2.1).
template <typename W>
void body(const Auth& a, ProtocolVersion v, W& w) {
  if (v != ProtocolVersion::V5) return w.fail();  // no AUTH before 5.0
  if (a.reason == ReasonCode::Success && empty_properties(a.properties)) return;
  w.u8(static_cast<std::uint8_t>(a.reason));
  write_properties(a.properties, PropertyScope::Auth, w);
}

std::uint8_t publish_first_byte(const PublishHeader& p) noexcept {
  return static_cast<std::uint8_t>(0x30 | (p.dup ? 0x08 : 0) | ((p.qos & 0x03) << 1) |
                                   (p.retain ? 0x01 : 0));
}

std::uint8_t first_byte(const Packet& packet) noexcept {
  if (const auto* p = std::get_if<Publish>(&packet)) return publish_first_byte(header_of(*p));
  const auto type = static_cast<std::uint8_t>(packet_type(packet));
  std::uint8_t flags = 0;
  if (type == 6 || type == 8 || type == 10) {
    flags = 0x02;  // PUBREL, SUBSCRIBE, UNSUBSCRIBE [MQTT-2.1.3-1]
  }
  return static_cast<std::uint8_t>((type << 4) | flags);
}

template <typename W>
void write_body(const Packet& packet, ProtocolVersion version, W& w) {
  std::visit([&](const auto& p) { body(p, version, w); }, packet);
}

// Size of the body (remaining length), or 0 with ok=false when it cannot be encoded.
template <typename F>
std::size_t body_size(F&& write, bool& ok, std::size_t extra = 0) {
  wire::Counter c;
  write(c);
  const std::size_t n = c.size() + extra;
  ok = c.ok() && n <= wire::kMaxVarint;
  return ok ? n : 0;
}

}  // namespace

bool encode(const Packet& packet, ProtocolVersion version, std::string& out) {
  bool ok = false;
  const std::size_t n = body_size([&](wire::Counter& c) { write_body(packet, version, c); }, ok);
  if (!ok) return false;
  out.reserve(out.size() + 1 + wire::varint_size(static_cast<std::uint32_t>(n)) + n);
  wire::Appender a(out);
  a.u8(first_byte(packet));
  a.varint(static_cast<std::uint32_t>(n));
  write_body(packet, version, a);
  return true;
}

std::size_t encoded_size(const Packet& packet, ProtocolVersion version) {
  bool ok = false;
  const std::size_t n = body_size([&](wire::Counter& c) { write_body(packet, version, c); }, ok);
  return ok ? 1 + wire::varint_size(static_cast<std::uint32_t>(n)) + n : 0;
}

bool encode_publish_head(const Publish& publish, ProtocolVersion version, std::string& out) {
  return encode_publish_head(header_of(publish), version, out);
}

bool encode_publish_head(const PublishHeader& header, ProtocolVersion version, std::string& out) {
  bool ok = false;
  const std::size_t payload = header.payload_size;
  const std::size_t n =
      body_size([&](wire::Counter& c) { publish_head(header, version, c); }, ok, payload);
  if (!ok) return false;
  wire::Appender a(out);
  out.reserve(out.size() + 1 + wire::varint_size(static_cast<std::uint32_t>(n)) + n - payload);
  a.u8(publish_first_byte(header));
  a.varint(static_cast<std::uint32_t>(n));
  publish_head(header, version, a);
  return true;
}

}  // namespace broker::protocol
