#pragma once
// MQTT encoder: packets to bytes, appended to a caller's buffer. For 3.1.1 the 5.0-only fields
// (properties, reason codes other than CONNACK's) are left out.
//
// Thread safety: free functions over caller-owned buffers.
#include <cstddef>
#include <string>
#include <string_view>

#include "protocol/packet.hpp"

namespace broker::protocol {

// Appends `packet` encoded for `version` to `out`. Returns false and appends nothing when the
// packet cannot be encoded (remaining length over 268,435,455, a string over 65,535 bytes, a
// property not allowed in that packet, a QoS or retain handling above 2, AUTH for 3.1.1, a
// 3.1.1 password without a user name). A CONNECT is encoded in its own `Connect::version`.
// 5.0 acks, DISCONNECT and AUTH use the short forms when reason and properties allow.
bool encode(const Packet& packet, ProtocolVersion version, std::string& out);

// Bytes `packet` takes on the wire for `version`, fixed header included; 0 if it cannot be encoded.
std::size_t encoded_size(const Packet& packet, ProtocolVersion version);

// Appends a PUBLISH's fixed header, topic, packet id and properties, but not its payload,
// sized for `publish.payload->size()` payload bytes; the payload is then written as-is after
// it (vectored write), so one shared payload serves every receiver. Same failure rule as encode.
bool encode_publish_head(const Publish& publish, ProtocolVersion version, std::string& out);

// The parts of a PUBLISH before its payload, by reference: what a broker sends per receiver,
// without building a Publish (no topic copy, no Properties object). `properties` null means
// none (5.0: property length 0).
struct PublishHeader {
  std::string_view topic;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
  const Properties* properties = nullptr;
  std::size_t payload_size = 0;
};

// As above, from a PublishHeader.
bool encode_publish_head(const PublishHeader& header, ProtocolVersion version, std::string& out);

}  // namespace broker::protocol
