#pragma once
// The packet-vector table: raw MQTT frames with the decoder's expected outcome (a packet, or the
// reason code of the error). It drives the codec unit tests (tests/unit/protocol/) and seeds
// the decoder fuzzer's corpus (tests/fuzz/seed_corpus.cpp).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/reason_code.hpp"
#include "protocol/packet.hpp"

namespace broker::test {

struct PacketVector {
  std::string name;  // "<version> <packet>: <what>", with the spec statement when there is one
  protocol::ProtocolVersion version;  // preset on the Decoder (a CONNECT brings its own)
  std::vector<std::uint8_t> bytes;    // exactly one frame
  bool expect_error = false;
  protocol::Packet packet;            // expected packet when !expect_error
  ReasonCode error = ReasonCode::Success;  // expected DecodeError::reason when expect_error
  // For valid rows: encode(packet, version) gives `bytes` back exactly. False for legal but
  // non-canonical inputs (long remaining length, explicit Success reason, ...).
  bool canonical = true;
};

const std::vector<PacketVector>& packet_vectors();

// Builds frames for tests: fields in wire order, then frame() adds the fixed header.
class Bytes {
 public:
  Bytes& u8(std::uint8_t v) { v_.push_back(v); return *this; }
  Bytes& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v >> 8)).u8(static_cast<std::uint8_t>(v)); }
  Bytes& u32(std::uint32_t v) { return u16(static_cast<std::uint16_t>(v >> 16)).u16(static_cast<std::uint16_t>(v)); }
  Bytes& varint(std::uint32_t v);
  Bytes& raw(std::string_view s) { v_.insert(v_.end(), s.begin(), s.end()); return *this; }
  Bytes& raw(const std::vector<std::uint8_t>& b) { v_.insert(v_.end(), b.begin(), b.end()); return *this; }
  Bytes& str(std::string_view s) { return u16(static_cast<std::uint16_t>(s.size())).raw(s); }
  // Property block: Property Length, then `props` (already encoded).
  Bytes& props(const Bytes& props) { return varint(static_cast<std::uint32_t>(props.size())).raw(props.v_); }
  std::size_t size() const { return v_.size(); }
  const std::vector<std::uint8_t>& bytes() const { return v_; }
  // first byte, minimal remaining length, this as the body.
  std::vector<std::uint8_t> frame(std::uint8_t first_byte) const;

 private:
  std::vector<std::uint8_t> v_;
};

// Short text of a packet for test failure messages.
std::string describe(const protocol::Packet& packet);
std::string hex(const std::vector<std::uint8_t>& bytes);
std::string hex(std::string_view bytes);

}  // namespace broker::test
