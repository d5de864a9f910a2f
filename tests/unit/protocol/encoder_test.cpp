// Encoder tests: golden bytes (the canonical rows of the packet-vector table and a few literal
// frames), round trips of every packet type in both versions, short forms, publish heads and
// the packets that cannot be encoded.
#include <catch2/catch.hpp>

#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"
#include "support/packet_vectors.hpp"
#include "unit/protocol/codec_helpers.hpp"

namespace broker::test {
namespace {

using namespace broker::protocol;

std::vector<std::uint8_t> encoded(const Packet& p, ProtocolVersion v) {
  std::string out;
  REQUIRE(encode(p, v, out));
  CHECK(encoded_size(p, v) == out.size());
  return to_bytes(out);
}

PayloadPtr payload(std::string s) { return Payload::copy_of(s); }

TEST_CASE("encoder: canonical packet vectors encode to their exact bytes", "[protocol][encoder]") {
  for (const auto& row : packet_vectors()) {
    if (row.expect_error || !row.canonical) continue;
    INFO(row.name);
    CHECK(hex(encoded(row.packet, row.version)) == hex(row.bytes));
  }
}

TEST_CASE("encoder: every valid packet vector round-trips", "[protocol][encoder]") {
  for (const auto& row : packet_vectors()) {
    if (row.expect_error) continue;
    INFO(row.name);
    const Decoded back = decode_chunks(encoded(row.packet, row.version), row.version);
    REQUIRE_FALSE(back.failed);
    REQUIRE(back.packets.size() == 1);
    CHECK(same_packet(back.packets[0], row.packet));
  }
}

TEST_CASE("encoder: golden bytes", "[protocol][encoder]") {
  SECTION("3.1.1 CONNECT") {
    Connect c;
    c.keep_alive = 60;
    c.client_id = "c1";
    CHECK(encoded(c, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'});
  }
  SECTION("5.0 PUBLISH QoS 1 without properties") {
    const Publish p{"a/b", payload("hi"), 1, false, false, 5, {}};
    CHECK(encoded(p, ProtocolVersion::V5) ==
          std::vector<std::uint8_t>{0x32, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x05, 0x00, 'h', 'i'});
  }
  SECTION("5.0 PUBACK Success is the two-byte short form") {
    CHECK(encoded(Ack{PacketType::Puback, 1, ReasonCode::Success, {}}, ProtocolVersion::V5) ==
          std::vector<std::uint8_t>{0x40, 0x02, 0x00, 0x01});
  }
  SECTION("5.0 PUBREL keeps its 0010 flags") {
    CHECK(encoded(Ack{PacketType::Pubrel, 1, ReasonCode::PacketIdentifierNotFound, {}}, ProtocolVersion::V5) ==
          std::vector<std::uint8_t>{0x62, 0x03, 0x00, 0x01, 0x92});
  }
  SECTION("5.0 DISCONNECT short forms") {
    CHECK(encoded(Disconnect{}, ProtocolVersion::V5) == std::vector<std::uint8_t>{0xE0, 0x00});
    CHECK(encoded(Disconnect{ReasonCode::ServerShuttingDown, {}}, ProtocolVersion::V5) ==
          std::vector<std::uint8_t>{0xE0, 0x01, 0x8B});
    Disconnect d{ReasonCode::Success, {}};
    d.properties.session_expiry_interval = 1;
    CHECK(encoded(d, ProtocolVersion::V5) ==
          std::vector<std::uint8_t>{0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01});
  }
  SECTION("3.1.1 leaves out reason codes and properties") {
    Ack a{PacketType::Puback, 1, ReasonCode::QuotaExceeded, {}};
    a.properties.reason_string = "x";
    CHECK(encoded(a, ProtocolVersion::V311) == std::vector<std::uint8_t>{0x40, 0x02, 0x00, 0x01});
    CHECK(encoded(Disconnect{ReasonCode::ServerMoved, {}}, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0xE0, 0x00});
    CHECK(encoded(Unsuback{2, {ReasonCode::Success}, {}}, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0xB0, 0x02, 0x00, 0x02});
  }
  SECTION("3.1.1 CONNACK and SUBACK map 5.0 codes") {
    CHECK(encoded(Connack{false, ReasonCode::Banned, {}}, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x05});
    CHECK(encoded(Connack{false, ReasonCode::QuotaExceeded, {}}, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x03});
    CHECK(encoded(Suback{1, {ReasonCode::GrantedQos2, ReasonCode::NotAuthorized}, {}}, ProtocolVersion::V311) ==
          std::vector<std::uint8_t>{0x90, 0x04, 0x00, 0x01, 0x02, 0x80});
  }
  SECTION("two-byte remaining length") {
    const Publish p{"t", payload(std::string(200, 'z')), 0, false, false, 0, {}};
    const auto bytes = encoded(p, ProtocolVersion::V311);
    REQUIRE(bytes.size() == 3 + 3 + 200);
    CHECK(bytes[0] == 0x30);
    CHECK(bytes[1] == 0xCB);  // 203 = 0x4B | continuation
    CHECK(bytes[2] == 0x01);
  }
}

TEST_CASE("encoder: encode_publish_head plus payload equals encode", "[protocol][encoder]") {
  for (auto v : {ProtocolVersion::V311, ProtocolVersion::V5}) {
    Publish p{"sensors/1", payload(std::string(300, 'p')), 2, true, true, 77, {}};
    if (v == ProtocolVersion::V5) {
      p.properties.subscription_identifiers = {3, 4};
      p.properties.topic_alias = 2;
    }
    std::string head = "prefix";  // appends, never overwrites
    REQUIRE(encode_publish_head(p, v, head));
    REQUIRE(head.substr(0, 6) == "prefix");
    std::string whole;
    REQUIRE(encode(p, v, whole));
    CHECK(head.substr(6) + std::string(p.payload->view()) == whole);
  }
}

TEST_CASE("encoder: a PublishHeader without properties encodes like a Publish with none", "[protocol][encoder]") {
  for (auto v : {ProtocolVersion::V311, ProtocolVersion::V5}) {
    for (std::uint8_t qos : {std::uint8_t{0}, std::uint8_t{1}}) {
      Publish p{"a/b/c", payload("xyz"), qos, true, false, static_cast<std::uint16_t>(qos ? 9 : 0), {}};
      std::string from_publish;
      REQUIRE(encode_publish_head(p, v, from_publish));
      std::string from_header;
      REQUIRE(encode_publish_head(PublishHeader{"a/b/c", qos, true, false, p.packet_id, nullptr, 3}, v,
                                  from_header));
      CHECK(from_header == from_publish);
    }
  }
}

TEST_CASE("encoder: refuses packets it cannot encode and appends nothing", "[protocol][encoder]") {
  std::string out = "keep";
  SECTION("string over 65,535 bytes") {
    const Publish p{std::string(65536, 'a'), payload(""), 0, false, false, 0, {}};
    CHECK_FALSE(encode(p, ProtocolVersion::V311, out));
    CHECK_FALSE(encode_publish_head(p, ProtocolVersion::V311, out));
    CHECK(encoded_size(p, ProtocolVersion::V311) == 0);
  }
  SECTION("property not allowed in the packet") {
    Connack c;
    c.properties.topic_alias = 1;
    CHECK_FALSE(encode(c, ProtocolVersion::V5, out));
    Publish p{"a", payload(""), 0, false, false, 0, {}};
    p.properties.will_delay_interval = 1;
    CHECK_FALSE(encode(p, ProtocolVersion::V5, out));
  }
  SECTION("AUTH before 5.0") { CHECK_FALSE(encode(Auth{}, ProtocolVersion::V311, out)); }
  SECTION("QoS 3") {
    CHECK_FALSE(encode(Publish{"a", payload(""), 3, false, false, 1, {}}, ProtocolVersion::V5, out));
    Subscribe s{1, {SubscribeEntry{"a", 3, false, false, 0}}, {}};
    CHECK_FALSE(encode(s, ProtocolVersion::V5, out));
  }
  SECTION("3.1.1 password without user name") {
    Connect c;
    c.password = "pw";
    CHECK_FALSE(encode(c, ProtocolVersion::V311, out));
    c.version = ProtocolVersion::V5;
    CHECK(encode(c, ProtocolVersion::V5, out));
    out = "keep";
  }
  SECTION("subscription identifier over 268,435,455") {
    Publish p{"a", payload(""), 0, false, false, 0, {}};
    p.properties.subscription_identifiers = {268435456u};
    CHECK_FALSE(encode(p, ProtocolVersion::V5, out));
  }
  CHECK(out == "keep");
}

TEST_CASE("encoder: a null payload encodes as empty", "[protocol][encoder]") {
  const Publish p{"a", nullptr, 0, false, false, 0, {}};
  CHECK(encoded(p, ProtocolVersion::V311) == std::vector<std::uint8_t>{0x30, 0x03, 0x00, 0x01, 'a'});
}

}  // namespace
}  // namespace broker::test
