// Decoder tests: the packet-vector table whole, byte by byte and in random chunks; streams of
// many packets; the maximum packet size; version adoption from CONNECT; sticky errors.
#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <set>

#include "protocol/decoder.hpp"
#include "support/packet_vectors.hpp"
#include "unit/protocol/codec_helpers.hpp"

namespace broker::test {
namespace {

using protocol::DecodeStatus;
using protocol::ProtocolVersion;

void check_row(const PacketVector& row, const Decoded& got) {
  INFO(row.name << "\nbytes: " << hex(row.bytes));
  if (row.expect_error) {
    REQUIRE(got.failed);
    INFO("what: " << got.error.what);
    CHECK(got.error.reason == row.error);
    CHECK(got.packets.empty());
  } else {
    INFO("error: " << (got.failed ? got.error.what : "none"));
    REQUIRE_FALSE(got.failed);
    REQUIRE(got.packets.size() == 1);
    INFO("got: " << describe(got.packets[0]) << "\nwant: " << describe(row.packet));
    CHECK(protocol::same_packet(got.packets[0], row.packet));
  }
}

TEST_CASE("decoder: every packet vector gives its expected outcome", "[protocol][decoder]") {
  for (const auto& row : packet_vectors()) {
    DYNAMIC_SECTION(row.name) { check_row(row, decode_chunks(row.bytes, row.version)); }
  }
}

TEST_CASE("decoder: every packet vector fed one byte at a time", "[protocol][decoder]") {
  for (const auto& row : packet_vectors()) {
    const Decoded got = decode_chunks(row.bytes, row.version, {1});
    check_row(row, got);
    // Every one-byte read ends in NeedMore: before the frame completes, and after it (the
    // decoder is asked again with the read used up).
    if (!row.expect_error) CHECK(got.need_more == row.bytes.size());
  }
}

TEST_CASE("decoder: every packet vector fed in random chunks", "[protocol][decoder]") {
  std::mt19937 rng(20240611);
  for (const auto& row : packet_vectors()) {
    for (int round = 0; round < 4; ++round) check_row(row, decode_chunks(row.bytes, row.version, random_chunks(rng)));
  }
}

TEST_CASE("decoder: many packets in one read and across reads", "[protocol][decoder]") {
  for (auto version : {ProtocolVersion::V311, ProtocolVersion::V5}) {
    std::vector<std::uint8_t> stream;
    std::vector<const PacketVector*> expected;
    for (const auto& row : packet_vectors()) {
      // CONNECT rows are left out: each switches the decoder to its own version.
      if (row.expect_error || row.version != version || row.bytes[0] >> 4 == 1) continue;
      stream.insert(stream.end(), row.bytes.begin(), row.bytes.end());
      expected.push_back(&row);
    }
    REQUIRE(expected.size() > 10);
    std::mt19937 rng(7);
    const std::vector<std::vector<std::size_t>> feeds = {{}, {1}, {2}, {3}, random_chunks(rng, 200)};
    for (const auto& feed : feeds) {
      const Decoded got = decode_chunks(stream, version, feed);
      INFO("version " << static_cast<int>(version) << ", " << feed.size() << " chunk sizes");
      REQUIRE_FALSE(got.failed);
      REQUIRE(got.packets.size() == expected.size());
      for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO(expected[i]->name);
        CHECK(protocol::same_packet(got.packets[i], expected[i]->packet));
      }
    }
  }
}

TEST_CASE("decoder: a packet after an error is not decoded", "[protocol][decoder]") {
  // PINGREQ, SUBSCRIBE with reserved flags, PINGREQ.
  const std::vector<std::uint8_t> bytes = {0xC0, 0x00, 0x80, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0xC0, 0x00};
  const Decoded got = decode_chunks(bytes, ProtocolVersion::V311);
  CHECK(got.packets.size() == 1);
  REQUIRE(got.failed);
  CHECK(got.error.reason == ReasonCode::MalformedPacket);

  protocol::Decoder d;
  std::span<const std::uint8_t> in(bytes);
  protocol::Packet p;
  protocol::DecodeError e;
  CHECK(d.next(in, p, e) == DecodeStatus::Packet);
  CHECK(d.next(in, p, e) == DecodeStatus::Error);
  std::span<const std::uint8_t> more(bytes.data(), 2);
  e = {};
  CHECK(d.next(more, p, e) == DecodeStatus::Error);  // stays failed, with the same error
  CHECK(e.reason == ReasonCode::MalformedPacket);
  CHECK(std::string(e.what) == "reserved fixed header flags");
}

namespace {

// What a 5.0 decoder (a server's, if `server`) says of a stream that so far holds only `first`.
std::optional<ReasonCode> first_byte_error(std::uint8_t first, bool server) {
  protocol::Decoder d;
  d.set_version(ProtocolVersion::V5);
  if (server) d.refuse_server_packets();
  const std::uint8_t byte[] = {first};
  std::span<const std::uint8_t> in(byte);
  protocol::Packet p;
  protocol::DecodeError e;
  if (d.next(in, p, e) != DecodeStatus::Error) return std::nullopt;
  return e.reason;
}

}  // namespace

TEST_CASE("decoder: a bad first byte is refused before its remaining length comes", "[protocol][decoder]") {
  // "GET / HTTP/1.1" after CONNECT: 'G' is PUBACK with flags 0111; nothing more is waited for.
  for (const std::uint8_t first : {std::uint8_t{'G'}, std::uint8_t{0x00}, std::uint8_t{0x63}}) {
    CHECK(first_byte_error(first, false) == ReasonCode::MalformedPacket);
  }
}

TEST_CASE("decoder: a server's decoder refuses packets only a server sends, with Protocol Error",
          "[protocol][decoder]") {
  for (const std::uint8_t first : {std::uint8_t{0x20}, std::uint8_t{0x90}, std::uint8_t{0xB0},
                                   std::uint8_t{0xD0}}) {
    CHECK(first_byte_error(first, true) == ReasonCode::ProtocolError);
    CHECK_FALSE(first_byte_error(first, false));  // a client's decoder waits for the rest
  }
  // A client's decoder (the default) takes them.
  protocol::Decoder client;
  const std::uint8_t pingresp[] = {0xD0, 0x00};
  std::span<const std::uint8_t> in(pingresp);
  protocol::Packet p;
  protocol::DecodeError e;
  CHECK(client.next(in, p, e) == DecodeStatus::Packet);
}

TEST_CASE("decoder: rejects reserved flags in SUBSCRIBE [MQTT-3.8.1-1]", "[protocol][decoder]") {
  for (std::uint8_t flags = 0; flags < 16; ++flags) {
    if (flags == 0x02) continue;
    const auto frame = Bytes().u16(1).str("a").u8(0).frame(static_cast<std::uint8_t>(0x80 | flags));
    const Decoded got = decode_chunks(frame, ProtocolVersion::V311);
    REQUIRE(got.failed);
    CHECK(got.error.reason == ReasonCode::MalformedPacket);
  }
}

TEST_CASE("decoder: a SUBSCRIBE or UNSUBSCRIBE carries at most 65,535 topic filters", "[protocol][decoder]") {
  // Four million one-byte filters fit in 16 MiB; decoded, they would take ~170 MB.
  for (const bool subscribe : {true, false}) {
    for (const std::size_t count : {std::size_t{65535}, std::size_t{65536}}) {
      Bytes body;
      body.u16(1);
      for (std::size_t i = 0; i < count; ++i) {
        body.str("a");
        if (subscribe) body.u8(1);
      }
      const Decoded got = decode_chunks(body.frame(subscribe ? 0x82 : 0xA2), ProtocolVersion::V311);
      INFO((subscribe ? "SUBSCRIBE with " : "UNSUBSCRIBE with ") << count);
      if (count == 65535) {
        CHECK_FALSE(got.failed);
      } else {
        REQUIRE(got.failed);
        CHECK(got.error.reason == ReasonCode::QuotaExceeded);
      }
    }
  }
}

TEST_CASE("decoder: MQTT 3.1 takes DUP on a resent PUBREL, SUBSCRIBE or UNSUBSCRIBE; 3.1.1 and 5.0 do not",
          "[protocol][decoder]") {
  const auto pubrel = Bytes().u16(1).frame(0x6A);
  const auto subscribe = Bytes().u16(1).str("a").u8(1).frame(0x8A);
  const auto unsubscribe = Bytes().u16(1).str("a").frame(0xAA);
  for (const auto* frame : {&pubrel, &subscribe, &unsubscribe}) {
    INFO(int{(*frame)[0]});
    const Decoded v31 = decode_chunks(*frame, ProtocolVersion::V31);
    CHECK_FALSE(v31.failed);
    CHECK(v31.packets.size() == 1);
    for (auto version : {ProtocolVersion::V311, ProtocolVersion::V5}) {
      const Decoded strict = decode_chunks(*frame, version);
      REQUIRE(strict.failed);
      CHECK(strict.error.reason == ReasonCode::MalformedPacket);
    }
  }
  // Other flags stay reserved in 3.1: QoS 0 on a SUBSCRIBE, DUP on a PUBACK.
  CHECK(decode_chunks(Bytes().u16(1).str("a").u8(1).frame(0x80), ProtocolVersion::V31).failed);
  CHECK(decode_chunks(Bytes().u16(1).frame(0x48), ProtocolVersion::V31).failed);
}

TEST_CASE("decoder: a variable byte integer longer than it needs is malformed [MQTT-1.5.5-1]",
          "[protocol][decoder]") {
  // PINGREQ with remaining length 0 written in two bytes, then in four.
  for (const std::vector<std::uint8_t>& bytes :
       {std::vector<std::uint8_t>{0xC0, 0x80, 0x00}, {0xC0, 0x80, 0x80, 0x80, 0x00}}) {
    const Decoded got = decode_chunks(bytes, ProtocolVersion::V5);
    REQUIRE(got.failed);
    CHECK(got.error.reason == ReasonCode::MalformedPacket);
  }
  // 128 needs two bytes (0x80 0x01): that form is fine.
  const auto long_enough = Bytes().str("t").raw(std::vector<std::uint8_t>(125, 'x')).frame(0x30);
  REQUIRE(long_enough[1] == 0x80);
  REQUIRE(long_enough[2] == 0x01);
  CHECK(decode_chunks(long_enough, ProtocolVersion::V311).packets.size() == 1);
  // A 5.0 PUBLISH whose property id 0x01 (Payload Format Indicator) is written 0x81 0x00.
  const auto publish = Bytes().str("t").u8(3).raw({0x81, 0x00, 0x00}).frame(0x30);
  const Decoded bad = decode_chunks(publish, ProtocolVersion::V5);
  REQUIRE(bad.failed);
  CHECK(bad.error.reason == ReasonCode::MalformedPacket);
  const auto fine = Bytes().str("t").u8(2).raw({0x01, 0x00}).frame(0x30);
  CHECK_FALSE(decode_chunks(fine, ProtocolVersion::V5).failed);
}

TEST_CASE("decoder: packet over max size fails as soon as its remaining length is read",
          "[protocol][decoder]") {
  protocol::Decoder d(1024 * 1024);
  // PUBLISH announcing 2 MiB; only the fixed header arrives.
  const std::vector<std::uint8_t> head = {0x30, 0x80, 0x80, 0x80, 0x01};
  protocol::Packet p;
  protocol::DecodeError e;
  SECTION("in one read") {
    std::span<const std::uint8_t> in(head);
    REQUIRE(d.next(in, p, e) == DecodeStatus::Error);
    CHECK(e.reason == ReasonCode::PacketTooLarge);
  }
  SECTION("header split over reads") {
    std::span<const std::uint8_t> a(head.data(), 2), b(head.data() + 2, 3);
    REQUIRE(d.next(a, p, e) == DecodeStatus::NeedMore);
    REQUIRE(d.next(b, p, e) == DecodeStatus::Error);
    CHECK(e.reason == ReasonCode::PacketTooLarge);
  }
}

TEST_CASE("decoder: max packet size counts the fixed header", "[protocol][decoder]") {
  const auto frame = Bytes().str("t").raw(std::string(100, 'x')).frame(0x30);  // 2 + 103 bytes
  REQUIRE(frame.size() == 105);
  CHECK_FALSE(decode_chunks(frame, ProtocolVersion::V311, {}, 105).failed);
  const Decoded over = decode_chunks(frame, ProtocolVersion::V311, {}, 104);
  REQUIRE(over.failed);
  CHECK(over.error.reason == ReasonCode::PacketTooLarge);
  const Decoded split = decode_chunks(frame, ProtocolVersion::V311, {1}, 104);
  REQUIRE(split.failed);
  CHECK(split.need_more == 1);  // failed at the second byte, the end of the remaining length
}

TEST_CASE("decoder: a huge announced length buffers only what arrived", "[protocol][decoder]") {
  protocol::Decoder d;  // default maximum: the protocol's own
  const std::vector<std::uint8_t> head = {0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 'a'};
  std::span<const std::uint8_t> in(head);
  protocol::Packet p;
  protocol::DecodeError e;
  CHECK(d.next(in, p, e) == DecodeStatus::NeedMore);
  CHECK(in.empty());
}

TEST_CASE("decoder: CONNECT sets the version for later packets", "[protocol][decoder]") {
  auto stream = Bytes().str("MQTT").u8(5).u8(2).u16(0).u8(0).str("c").frame(0x10);
  const std::vector<std::uint8_t> puback = {0x40, 0x03, 0x00, 0x01, 0x10};  // 5.0 only
  stream.insert(stream.end(), puback.begin(), puback.end());
  protocol::Decoder d;
  CHECK_FALSE(d.version().has_value());
  std::span<const std::uint8_t> in(stream);
  protocol::Packet p;
  protocol::DecodeError e;
  REQUIRE(d.next(in, p, e) == DecodeStatus::Packet);
  CHECK(d.version() == ProtocolVersion::V5);
  REQUIRE(d.next(in, p, e) == DecodeStatus::Packet);
  CHECK(std::get<protocol::Ack>(p).reason == ReasonCode::NoMatchingSubscribers);
}

TEST_CASE("decoder: unsupported protocol level is reported with the level [MQTT-3.1.2-2]",
          "[protocol][decoder]") {
  const auto frame = Bytes().str("MQTT").u8(7).u8(2).u16(0).str("c").frame(0x10);
  protocol::Decoder d;
  std::span<const std::uint8_t> in(frame);
  protocol::Packet p;
  protocol::DecodeError e;
  REQUIRE(d.next(in, p, e) == DecodeStatus::Error);
  CHECK(e.reason == ReasonCode::UnsupportedProtocolVersion);
  CHECK(e.protocol_level == 7);
  CHECK_FALSE(d.version().has_value());
}

TEST_CASE("decoder: a failed 5.0 CONNECT still tells its version", "[protocol][decoder]") {
  // Reserved connect flag set: the connection answers CONNACK 0x81 in the 5.0 form.
  const auto frame = Bytes().str("MQTT").u8(5).u8(3).u16(0).u8(0).str("c").frame(0x10);
  protocol::Decoder d;
  std::span<const std::uint8_t> in(frame);
  protocol::Packet p;
  protocol::DecodeError e;
  REQUIRE(d.next(in, p, e) == DecodeStatus::Error);
  CHECK(e.reason == ReasonCode::MalformedPacket);
  CHECK(e.protocol_level == 5);
  CHECK(d.version() == ProtocolVersion::V5);
}

TEST_CASE("decoder: a 5.0 CONNECT's remaining length must be in its shortest form [MQTT-1.5.5-1]",
          "[protocol][decoder]") {
  // Read before the version is known, so checked once the CONNECT says 5; 3.1.1 stays lenient.
  for (const std::uint8_t level : {std::uint8_t{5}, std::uint8_t{4}}) {
    auto frame = Bytes().str("MQTT").u8(level).u8(2).u16(0).str("c").frame(0x10);
    if (level == 5) frame = Bytes().str("MQTT").u8(5).u8(2).u16(0).u8(0).str("c").frame(0x10);
    REQUIRE(frame[1] < 0x80);
    std::vector<std::uint8_t> longer = {0x10, static_cast<std::uint8_t>(frame[1] | 0x80), 0x00};
    longer.insert(longer.end(), frame.begin() + 2, frame.end());
    const Decoded got = decode_chunks(longer, std::nullopt);
    if (level == 5) {
      REQUIRE(got.failed);
      CHECK(got.error.reason == ReasonCode::MalformedPacket);
      CHECK(got.error.protocol_level == 5);
    } else {
      CHECK_FALSE(got.failed);
    }
  }
}

TEST_CASE("decoder: at most 65,535 user properties in one packet, Quota Exceeded past it", "[protocol][decoder]") {
  for (const std::uint32_t count : {65535u, 65536u}) {
    Bytes props;
    for (std::uint32_t i = 0; i < count; ++i) props.u8(0x26).str("").str("");
    const auto publish = Bytes().str("t").props(props).frame(0x30);
    const Decoded got = decode_chunks(publish, ProtocolVersion::V5);
    if (count == 65535) {
      REQUIRE_FALSE(got.failed);
      CHECK(std::get<protocol::Publish>(got.packets[0]).properties.user_properties.size() == count);
    } else {
      REQUIRE(got.failed);
      CHECK(got.error.reason == ReasonCode::QuotaExceeded);
    }
  }
}

TEST_CASE("decoder: decode_packet decodes one whole frame", "[protocol][decoder]") {
  const auto body = Bytes().u16(1).u8(0x87).bytes();
  protocol::Packet p;
  protocol::DecodeError e;
  REQUIRE(protocol::decode_packet(0x40, body, ProtocolVersion::V5, p, e) == DecodeStatus::Packet);
  CHECK(std::get<protocol::Ack>(p).reason == ReasonCode::NotAuthorized);
  CHECK(protocol::decode_packet(0x40, body, ProtocolVersion::V311, p, e) == DecodeStatus::Error);
}

TEST_CASE("decoder: PUBLISH payload and will payload are never null", "[protocol][decoder]") {
  const Decoded pub = decode_chunks(Bytes().str("a").frame(0x30), ProtocolVersion::V311);
  REQUIRE(pub.packets.size() == 1);
  CHECK(std::get<protocol::Publish>(pub.packets[0]).payload != nullptr);
  const Decoded con =
      decode_chunks(Bytes().str("MQTT").u8(4).u8(0x06).u16(0).str("c").str("w").str("").frame(0x10), std::nullopt);
  REQUIRE(con.packets.size() == 1);
  const auto& will = std::get<protocol::Connect>(con.packets[0]).will;
  REQUIRE(will.has_value());
  REQUIRE(will->payload != nullptr);
  CHECK(will->payload->empty());
}

TEST_CASE("decoder: the packet vector table covers every packet type in both versions",
          "[protocol][decoder]") {
  for (auto version : {ProtocolVersion::V311, ProtocolVersion::V5}) {
    std::set<int> types;
    for (const auto& row : packet_vectors()) {
      if (!row.expect_error && row.version == version) types.insert(static_cast<int>(protocol::packet_type(row.packet)));
    }
    CHECK(types.size() == (version == ProtocolVersion::V5 ? 15u : 14u));
  }
}

}  // namespace
}  // namespace broker::test
