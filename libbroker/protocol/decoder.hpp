#pragma once
// Incremental MQTT decoder: bytes in, packets out. Handles partial reads (a frame split across
// many reads) and many frames in one read. Validates everything the specifications make the
// receiver check (malformed remaining length, reserved flags, UTF-8, property rules, ...).
// Decodes packets of both directions, so clients in tests and benchmarks use it too; which
// packets a server may receive is the connection's business.
//
// Choices where the specifications leave room (tests/support/packet_vectors.cpp has a row each):
// - A remaining length (or other Variable Byte Integer) in more bytes than needed is accepted;
//   minimality binds the sender, and the value is unambiguous. A fifth byte is malformed.
// - DUP on a QoS 0 PUBLISH is malformed in 3.1.1 as in 5.0 (same rule, [MQTT-3.3.1-2]).
// - Packet Identifier 0 where one is required (PUBLISH QoS>0, SUBSCRIBE, UNSUBSCRIBE, acks) and
//   SUBSCRIBE/UNSUBSCRIBE/SUBACK/UNSUBACK without entries are ProtocolError.
// - 5.0 SUBSCRIBE QoS 3 and Retain Handling 3 are ProtocolError (section 3.8.3.1 says so);
//   reserved option bits are MalformedPacket; in 3.1.1 all three are MalformedPacket.
// - An unknown property id, a reason code not defined for the packet and a 3.1.1 CONNACK code
//   above 5 are MalformedPacket; a property in the wrong packet, a duplicate, or a value out of
//   range (0 for Receive Maximum, Maximum Packet Size, Topic Alias, Subscription Identifier;
//   above 1 for the one-byte properties) are ProtocolError.
// - CONNECT with an unknown protocol name is ProtocolError (the server closes, no CONNACK);
//   a known name with another level is UnsupportedProtocolVersion (see protocol_level).
// - Topic filters are only checked for UTF-8 here: a bad filter is answered per entry in SUBACK
//   (0x8F), not by closing. PUBLISH and Will topic names are checked (TopicNameInvalid).
// - U+0001..U+001F, U+007F..U+009F and non-characters are allowed in strings ("SHOULD NOT").
// - AUTH with a lone reason code (remaining length 1) is accepted like DISCONNECT's.
// - A 3.1.1 PUBLISH or ack decoded into a reused Packet resets its properties only when one
//   that those packets can carry in 5.0 is set (the full reset cost more than the rest of the
//   decode).
//
// Thread safety: one Decoder per connection; not shared.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "protocol/packet.hpp"

namespace broker::protocol {

struct DecodeError {
  ReasonCode reason = ReasonCode::MalformedPacket;  // MalformedPacket, ProtocolError, PacketTooLarge, TopicNameInvalid, ...
  // For an error inside a CONNECT: the Protocol Level byte once read, else 0. With reason
  // UnsupportedProtocolVersion it is the level the client asked for, so the connection can
  // answer CONNACK 0x01 (3.1.1 form) or 0x84 (5.0 form) before closing. When the level was a
  // supported one (3, 4, 5) the Decoder has also adopted it (version()), so any CONNECT error
  // can be answered in the client's own protocol version.
  std::uint8_t protocol_level = 0;
  const char* what = "";  // static text for logs, e.g. "reserved flags set in SUBSCRIBE"
};

// GCC's -Wshadow flags the scoped enumerator `Packet` against the type `Packet`, though a
// scoped enumerator cannot hide anything; silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
enum class DecodeStatus { Packet, NeedMore, Error };
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

class Decoder {
 public:
  // max_packet_size: the largest whole packet (fixed header included) accepted; a larger one
  // gives PacketTooLarge as soon as its remaining length is read, before its body arrives.
  explicit Decoder(std::uint32_t max_packet_size = 268435460u) : max_packet_size_(max_packet_size) {}

  // Protocol version used for every packet but CONNECT. Unset until set_version or until a
  // CONNECT is decoded (its version is then adopted, also when the CONNECT fails after its
  // protocol name and level were accepted). While unset, packets decode as 3.1.1.
  void set_version(ProtocolVersion version) noexcept { version_ = version; }
  std::optional<ProtocolVersion> version() const noexcept { return version_; }
  void set_max_packet_size(std::uint32_t size) noexcept { max_packet_size_ = size; }
  std::uint32_t max_packet_size() const noexcept { return max_packet_size_; }
  // Memory held for a packet whose bytes have not all come (0 between packets, or a small
  // buffer kept for the next one).
  std::size_t buffered_bytes() const noexcept { return partial_ ? partial_->capacity() : 0; }
  // Bytes received so far of a packet that has not all come (0 between packets).
  std::size_t unfinished_bytes() const noexcept { return partial_ ? partial_->size() : 0; }
  // A server's decoder: CONNACK, SUBACK, UNSUBACK and PINGRESP, which only a server sends,
  // are a Protocol Error as soon as their first byte arrives, whatever their body.
  void refuse_server_packets() noexcept { refuse_server_packets_ = true; }

  // Consumes bytes from the front of `input` until one packet is complete (Packet: `out` holds
  // it), the input is used up (NeedMore: the tail is buffered inside), or the stream is broken
  // (Error: `error` says why; the decoder stays in error and must not be fed again: a later
  // call returns Error with the same `error`). In the Packet case `input` may still hold more
  // frames; call again until NeedMore. `out` is unspecified after an Error.
  DecodeStatus next(std::span<const std::uint8_t>& input, Packet& out, DecodeError& error);

 private:
  std::uint32_t max_packet_size_;
  std::optional<ProtocolVersion> version_;
  bool failed_ = false;
  bool refuse_server_packets_ = false;
  // An incomplete frame carried between reads. Boxed: one decoder lives in every connection,
  // and most never see a frame split across reads.
  std::unique_ptr<std::string> partial_;
  DecodeError error_;  // the error that failed the stream, repeated on later calls
};

// Decodes one whole frame: `first_byte` is the fixed header's first byte, `body` the
// remaining-length bytes after the fixed header.
DecodeStatus decode_packet(std::uint8_t first_byte, std::span<const std::uint8_t> body,
                           ProtocolVersion version, Packet& out, DecodeError& error);

}  // namespace broker::protocol
