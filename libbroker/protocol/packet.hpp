#pragma once
// The MQTT control packets of 3.1.1 and 5.0 as plain values. The codec (decoder.hpp,
// encoder.hpp) turns bytes into these and back; nothing here does I/O. Fields that exist only
// in 5.0 (properties, reason codes) are ignored when encoding for 3.1.1.
//
// Thread safety: plain value types. A Publish payload is immutable and may be shared between
// threads by reference (PayloadPtr).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/reason_code.hpp"
#include "protocol/payload.hpp"
#include "protocol/properties.hpp"

namespace broker::protocol {

enum class ProtocolVersion : std::uint8_t { V31 = 3, V311 = 4, V5 = 5 };

enum class PacketType : std::uint8_t {
  Connect = 1, Connack = 2, Publish = 3, Puback = 4, Pubrec = 5, Pubrel = 6, Pubcomp = 7,
  Subscribe = 8, Suback = 9, Unsubscribe = 10, Unsuback = 11, Pingreq = 12, Pingresp = 13,
  Disconnect = 14, Auth = 15,
};

struct Will {
  std::string topic;
  PayloadPtr payload;  // never null after decoding
  std::uint8_t qos = 0;
  bool retain = false;
  Properties properties;  // 5.0 will properties (will delay, expiry, content type, ...)
};

struct Connect {
  ProtocolVersion version = ProtocolVersion::V311;
  bool clean_start = true;  // 3.1.1 "clean session"
  std::uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  Properties properties;
};

struct Connack {
  bool session_present = false;
  ReasonCode reason = ReasonCode::Success;  // 3.1.1: encoded with to_v3_connack_code
  Properties properties;
};

struct Publish {
  std::string topic;  // may be empty in 5.0 when a topic alias is set
  PayloadPtr payload;  // never null after decoding
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // 0 for QoS 0
  Properties properties;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct Ack {
  PacketType type = PacketType::Puback;
  std::uint16_t packet_id = 0;
  ReasonCode reason = ReasonCode::Success;
  Properties properties;
};

struct SubscribeEntry {
  std::string filter;
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;  // 0, 1 or 2
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  std::vector<SubscribeEntry> entries;  // never empty after decoding
  Properties properties;
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<ReasonCode> reasons;  // 3.1.1: 0x00-0x02 or 0x80
  Properties properties;
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;  // never empty after decoding
  Properties properties;
};

struct Unsuback {
  std::uint16_t packet_id = 0;
  std::vector<ReasonCode> reasons;  // 5.0 only
  Properties properties;
};

struct Pingreq {};
struct Pingresp {};

struct Disconnect {
  ReasonCode reason = ReasonCode::Success;
  Properties properties;
};

struct Auth {
  ReasonCode reason = ReasonCode::Success;
  Properties properties;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, Suback, Unsubscribe,
                            Unsuback, Pingreq, Pingresp, Disconnect, Auth>;

PacketType packet_type(const Packet& packet) noexcept;

// Value equality of two packets: every field, payloads compared by content (a null payload
// equals an empty one). Used by the codec's round-trip tests and fuzzer.
bool same_packet(const Packet& a, const Packet& b) noexcept;

}  // namespace broker::protocol
