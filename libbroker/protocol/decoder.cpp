// The incremental MQTT 3.1.1 / 5.0 decoder. Error categories follow the specifications: bytes
// that cannot be parsed, reserved bits and wrong flags are MalformedPacket; well-formed values
// that break a rule (duplicate property, packet id 0, empty SUBSCRIBE) are ProtocolError.
#include "protocol/decoder.hpp"

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <utility>

#include "protocol/property_codec.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"
#include "protocol/wire.hpp"

namespace broker::protocol {
namespace {

using wire::Reader;

// A buffer that grew for a big frame is released afterwards instead of being kept per
// connection: an idle connection holds at most this much (and nothing if no frame ever came
// split across reads).
constexpr std::size_t kKeepBuffer = 4 * 1024;

// Whether a reused packet may hold properties a PUBLISH or an ack can carry (3.1.1 decoding
// resets them only then: comparing a few fields costs less than resetting all of them).
bool may_hold_publish_properties(const Properties& p) noexcept {
  return p.payload_format_indicator || p.message_expiry_interval || p.content_type ||
         p.response_topic || p.correlation_data || !p.subscription_identifiers.empty() ||
         p.topic_alias || !p.user_properties.empty() || p.reason_string;
}

bool fail(DecodeError& error, ReasonCode reason, const char* what) {
  error.reason = reason;
  error.what = what;
  return false;
}

bool malformed(DecodeError& error, const char* what) {
  return fail(error, ReasonCode::MalformedPacket, what);
}

bool read_utf8(Reader& r, std::string& out, DecodeError& error) {
  std::string_view v;
  if (!r.prefixed(v)) return malformed(error, "truncated string");
  if (!valid_utf8_string(v)) return malformed(error, "invalid UTF-8 string");
  out.assign(v);
  return true;
}

bool read_binary(Reader& r, std::string& out, DecodeError& error) {
  std::string_view v;
  if (!r.prefixed(v)) return malformed(error, "truncated binary data");
  out.assign(v);
  return true;
}

// Packet Identifier of a packet that must carry a non-zero one [MQTT-2.2.1-3], [MQTT-2.3.1-1].
bool read_packet_id(Reader& r, std::uint16_t& id, DecodeError& error) {
  if (!r.u16(id)) return malformed(error, "truncated packet identifier");
  if (id == 0) return fail(error, ReasonCode::ProtocolError, "packet identifier 0");
  return true;
}

bool at_end(const Reader& r, DecodeError& error) {
  return r.empty() || malformed(error, "trailing bytes after packet content");
}

// Reason codes each 5.0 packet may carry (MQTT 5.0 section 2.4 table 2-6).
bool reason_allowed(PacketType type, std::uint8_t code) noexcept {
  switch (type) {
    case PacketType::Connack:
      return code == 0x00 || (code >= 0x80 && code <= 0x8A) || code == 0x8C || code == 0x90 ||
             code == 0x95 || code == 0x97 || (code >= 0x99 && code <= 0x9D) || code == 0x9F;
    case PacketType::Puback:
    case PacketType::Pubrec:
      return code == 0x00 || code == 0x10 || code == 0x80 || code == 0x83 || code == 0x87 ||
             code == 0x90 || code == 0x91 || code == 0x97 || code == 0x99;
    case PacketType::Pubrel:
    case PacketType::Pubcomp: return code == 0x00 || code == 0x92;
    case PacketType::Suback:
      return code <= 0x02 || code == 0x80 || code == 0x83 || code == 0x87 || code == 0x8F ||
             code == 0x91 || code == 0x97 || code == 0x9E || code == 0xA1 || code == 0xA2;
    case PacketType::Unsuback:
      return code == 0x00 || code == 0x11 || code == 0x80 || code == 0x83 || code == 0x87 ||
             code == 0x8F || code == 0x91;
    case PacketType::Disconnect:
      return code == 0x00 || code == 0x04 || (code >= 0x80 && code <= 0x83) || code == 0x87 ||
             code == 0x89 || code == 0x8B || (code >= 0x8D && code <= 0x90) ||
             (code >= 0x93 && code <= 0xA2);
    case PacketType::Auth: return code == 0x00 || code == 0x18 || code == 0x19;
    default: return false;
  }
}

bool read_reason(Reader& r, PacketType type, ReasonCode& reason, DecodeError& error) {
  std::uint8_t code = 0;
  if (!r.u8(code)) return malformed(error, "truncated reason code");
  if (!reason_allowed(type, code)) return malformed(error, "reason code not valid for packet");
  reason = static_cast<ReasonCode>(code);
  return true;
}

// 3.1.1 CONNACK return codes 0..5 (section 3.2.2.3) as reason codes; others are reserved.
bool v3_connack_reason(std::uint8_t code, ReasonCode& reason) noexcept {
  static constexpr ReasonCode kMap[] = {
      ReasonCode::Success,           ReasonCode::UnsupportedProtocolVersion,
      ReasonCode::ClientIdentifierNotValid, ReasonCode::ServerUnavailable,
      ReasonCode::BadUserNameOrPassword,    ReasonCode::NotAuthorized};
  if (code >= std::size(kMap)) return false;
  reason = kMap[code];
  return true;
}

struct ConnectResult {
  std::optional<ProtocolVersion> version;  // set once the protocol name and level are accepted
};

bool decode_connect(Reader& r, Connect& c, DecodeError& error, ConnectResult& result) {
  std::string_view name;
  if (!r.prefixed(name)) return malformed(error, "truncated protocol name");
  std::uint8_t level = 0;
  if (!r.u8(level)) return malformed(error, "truncated protocol level");
  error.protocol_level = level;
  if (name == "MQTT") {
    if (level != 4 && level != 5) {
      return fail(error, ReasonCode::UnsupportedProtocolVersion, "unsupported protocol level");
    }
  } else if (name == "MQIsdp") {
    if (level != 3) {
      return fail(error, ReasonCode::UnsupportedProtocolVersion, "unsupported protocol level");
    }
  } else {
    // [MQTT-3.1.2-1]: not this protocol; the server closes without a CONNACK.
    return fail(error, ReasonCode::ProtocolError, "unknown protocol name");
  }
  c.version = static_cast<ProtocolVersion>(level);
  result.version = c.version;
  const bool v5 = c.version == ProtocolVersion::V5;

  std::uint8_t flags = 0;
  if (!r.u8(flags)) return malformed(error, "truncated connect flags");
  if ((flags & 0x01) != 0) return malformed(error, "reserved connect flag set");  // [MQTT-3.1.2-3]
  const bool will = (flags & 0x04) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = (flags & 0x20) != 0;
  const bool has_password = (flags & 0x40) != 0;
  const bool has_username = (flags & 0x80) != 0;
  if (!will && (will_qos != 0 || will_retain)) {
    return malformed(error, "will QoS or retain without will flag");  // [MQTT-3.1.2-11/13]
  }
  if (will_qos == 3) return malformed(error, "will QoS 3");  // [MQTT-3.1.2-12]
  if (!v5 && has_password && !has_username) {
    return malformed(error, "password flag without user name flag");  // 3.1.1 [MQTT-3.1.2-22]
  }
  c.clean_start = (flags & 0x02) != 0;
  if (!r.u16(c.keep_alive)) return malformed(error, "truncated keep alive");
  c.properties = Properties{};
  if (v5) {
    if (!decode_properties(r, PropertyScope::Connect, c.properties, error)) return false;
    if (c.properties.authentication_data && !c.properties.authentication_method) {
      return fail(error, ReasonCode::ProtocolError, "authentication data without method");
    }
  }
  if (!read_utf8(r, c.client_id, error)) return false;
  c.will.reset();
  if (will) {
    Will w;
    w.qos = will_qos;
    w.retain = will_retain;
    if (v5 && !decode_properties(r, PropertyScope::Will, w.properties, error)) return false;
    if (!read_utf8(r, w.topic, error)) return false;
    if (!valid_topic_name(w.topic)) return fail(error, ReasonCode::TopicNameInvalid, "invalid will topic");
    std::string_view payload;
    if (!r.prefixed(payload)) return malformed(error, "truncated will payload");
    w.payload = Payload::copy_of(payload);
    c.will = std::move(w);
  }
  c.username.reset();
  c.password.reset();
  if (has_username) {
    std::string u;
    if (!read_utf8(r, u, error)) return false;
    c.username = std::move(u);
  }
  if (has_password) {
    std::string p;
    if (!read_binary(r, p, error)) return false;
    c.password = std::move(p);
  }
  return at_end(r, error);
}

bool decode_connack(Reader& r, bool v5, Connack& c, DecodeError& error) {
  std::uint8_t flags = 0;
  std::uint8_t code = 0;
  if (!r.u8(flags) || !r.u8(code)) return malformed(error, "truncated CONNACK");
  if ((flags & 0xFE) != 0) return malformed(error, "reserved CONNACK flags set");  // [MQTT-3.2.2-1]
  c.session_present = (flags & 0x01) != 0;
  c.properties = Properties{};
  if (!v5) {
    if (!v3_connack_reason(code, c.reason)) return malformed(error, "reserved CONNACK return code");
    return at_end(r, error);
  }
  if (!reason_allowed(PacketType::Connack, code)) {
    return malformed(error, "reason code not valid for packet");
  }
  c.reason = static_cast<ReasonCode>(code);
  if (!decode_properties(r, PropertyScope::Connack, c.properties, error)) return false;
  return at_end(r, error);
}

bool decode_publish(std::uint8_t flags, Reader& r, bool v5, Publish& p, DecodeError& error) {
  p.qos = static_cast<std::uint8_t>((flags >> 1) & 0x03);
  p.dup = (flags & 0x08) != 0;
  p.retain = (flags & 0x01) != 0;
  if (p.qos == 3) return malformed(error, "PUBLISH QoS 3");  // [MQTT-3.3.1-4]
  if (p.dup && p.qos == 0) return malformed(error, "DUP set on QoS 0 PUBLISH");  // [MQTT-3.3.1-2]
  if (!read_utf8(r, p.topic, error)) return false;
  // 5.0 allows an empty name when a Topic Alias stands for it (checked after the properties).
  if (!(v5 && p.topic.empty()) && !valid_topic_name(p.topic)) {
    return fail(error, ReasonCode::TopicNameInvalid, "invalid topic name in PUBLISH");
  }
  p.packet_id = 0;
  if (p.qos > 0 && !read_packet_id(r, p.packet_id, error)) return false;
  // Resetting costs more than checking: a 3.1.1 stream never fills them.
  if (v5 || may_hold_publish_properties(p.properties)) p.properties = Properties{};
  if (v5) {
    if (!decode_properties(r, PropertyScope::Publish, p.properties, error)) return false;
    if (p.topic.empty() && !p.properties.topic_alias) {
      return fail(error, ReasonCode::ProtocolError, "empty topic without topic alias");
    }
  }
  p.payload = Payload::copy_of(r.rest());
  return true;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP. 5.0 lets the sender drop a Success reason code and an empty
// property block (sections 3.4.2.1, 3.4.2.2.1).
bool decode_ack(PacketType type, Reader& r, bool v5, Ack& a, DecodeError& error) {
  a.type = type;
  a.reason = ReasonCode::Success;
  if (v5 || may_hold_publish_properties(a.properties)) a.properties = Properties{};
  if (!read_packet_id(r, a.packet_id, error)) return false;
  if (v5 && !r.empty()) {
    if (!read_reason(r, type, a.reason, error)) return false;
    if (!r.empty() && !decode_properties(r, static_cast<PropertyScope>(type), a.properties, error)) {
      return false;
    }
  }
  return at_end(r, error);
}

// Topic filters one SUBSCRIBE or UNSUBSCRIBE may carry. A 16 MiB packet holds four million
// one-byte filters, which decode to ~170 MB and keep a worker busy for seconds; 65,535 is far
// more than a session holds (Limits::max_subscriptions_per_session, 10,000 by default).
constexpr std::size_t kMaxTopicFiltersPerPacket = 65535;

bool decode_subscribe(Reader& r, bool v5, Subscribe& s, DecodeError& error) {
  if (!read_packet_id(r, s.packet_id, error)) return false;
  s.properties = Properties{};
  if (v5 && !decode_properties(r, PropertyScope::Subscribe, s.properties, error)) return false;
  s.entries.clear();
  while (!r.empty()) {
    if (s.entries.size() == kMaxTopicFiltersPerPacket) {
      return fail(error, ReasonCode::QuotaExceeded, "SUBSCRIBE with more than 65,535 topic filters");
    }
    SubscribeEntry e;
    if (!read_utf8(r, e.filter, error)) return false;
    std::uint8_t options = 0;
    if (!r.u8(options)) return malformed(error, "truncated subscription options");
    e.qos = static_cast<std::uint8_t>(options & 0x03);
    if (!v5) {
      // [MQTT-3.8.3-4]: reserved bits or QoS 3 make the packet malformed.
      if ((options & 0xFC) != 0) return malformed(error, "reserved subscription option bits set");
      if (e.qos == 3) return malformed(error, "subscription QoS 3");
    } else {
      if ((options & 0xC0) != 0) {
        return malformed(error, "reserved subscription option bits set");  // [MQTT-3.8.3-5]
      }
      e.no_local = (options & 0x04) != 0;
      e.retain_as_published = (options & 0x08) != 0;
      e.retain_handling = static_cast<std::uint8_t>((options >> 4) & 0x03);
      // Section 3.8.3.1 names both of these Protocol Errors, not malformed packets.
      if (e.qos == 3) return fail(error, ReasonCode::ProtocolError, "subscription QoS 3");
      if (e.retain_handling == 3) {
        return fail(error, ReasonCode::ProtocolError, "retain handling 3");
      }
      if (e.no_local && is_shared_filter(e.filter)) {
        return fail(error, ReasonCode::ProtocolError, "no local on shared subscription");  // [MQTT-3.8.3-4]
      }
    }
    s.entries.push_back(std::move(e));
  }
  if (s.entries.empty()) {
    return fail(error, ReasonCode::ProtocolError, "SUBSCRIBE without topic filters");  // [MQTT-3.8.3-2]
  }
  return true;
}

bool decode_suback(Reader& r, bool v5, Suback& s, DecodeError& error) {
  if (!read_packet_id(r, s.packet_id, error)) return false;
  s.properties = Properties{};
  if (v5 && !decode_properties(r, PropertyScope::Suback, s.properties, error)) return false;
  s.reasons.clear();
  while (!r.empty()) {
    std::uint8_t code = 0;
    (void)r.u8(code);
    const bool ok = v5 ? reason_allowed(PacketType::Suback, code) : (code <= 0x02 || code == 0x80);
    if (!ok) return malformed(error, "invalid SUBACK return code");
    s.reasons.push_back(static_cast<ReasonCode>(code));
  }
  if (s.reasons.empty()) return fail(error, ReasonCode::ProtocolError, "SUBACK without reason codes");
  return true;
}

bool decode_unsubscribe(Reader& r, bool v5, Unsubscribe& u, DecodeError& error) {
  if (!read_packet_id(r, u.packet_id, error)) return false;
  u.properties = Properties{};
  if (v5 && !decode_properties(r, PropertyScope::Unsubscribe, u.properties, error)) return false;
  u.filters.clear();
  while (!r.empty()) {
    if (u.filters.size() == kMaxTopicFiltersPerPacket) {
      return fail(error, ReasonCode::QuotaExceeded, "UNSUBSCRIBE with more than 65,535 topic filters");
    }
    std::string f;
    if (!read_utf8(r, f, error)) return false;
    u.filters.push_back(std::move(f));
  }
  if (u.filters.empty()) {
    return fail(error, ReasonCode::ProtocolError, "UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  }
  return true;
}

bool decode_unsuback(Reader& r, bool v5, Unsuback& u, DecodeError& error) {
  if (!read_packet_id(r, u.packet_id, error)) return false;
  u.properties = Properties{};
  u.reasons.clear();
  if (!v5) return at_end(r, error);
  if (!decode_properties(r, PropertyScope::Unsuback, u.properties, error)) return false;
  while (!r.empty()) {
    ReasonCode reason{};
    if (!read_reason(r, PacketType::Unsuback, reason, error)) return false;
    u.reasons.push_back(reason);
  }
  if (u.reasons.empty()) {
    return fail(error, ReasonCode::ProtocolError, "UNSUBACK without reason codes");
  }
  return true;
}

// DISCONNECT and AUTH in 5.0: remaining length 0 means Success without properties; a reason
// code alone means no properties (3.14.2.2.1; AUTH accepted the same way for symmetry).
bool decode_reason_only(PacketType type, Reader& r, ReasonCode& reason, Properties& props,
                        DecodeError& error) {
  reason = ReasonCode::Success;
  props = Properties{};
  if (r.empty()) return true;
  if (!read_reason(r, type, reason, error)) return false;
  if (!r.empty() && !decode_properties(r, static_cast<PropertyScope>(type), props, error)) {
    return false;
  }
  return at_end(r, error);
}

// Fixed-header flags each type must carry [MQTT-2.1.3-1]; PUBLISH's are checked on their own.
// MQTT 3.1 (level 3) has its senders set DUP on a resent PUBREL, SUBSCRIBE or UNSUBSCRIBE
// (3.1 section 2.1), so a 3.1 client retrying one after a reconnect is not malformed.
bool flags_valid(PacketType type, std::uint8_t flags, bool v31) noexcept {
  switch (type) {
    case PacketType::Publish: return true;
    case PacketType::Pubrel:
    case PacketType::Subscribe:
    case PacketType::Unsubscribe: return flags == 0x02 || (v31 && flags == 0x0A);
    default: return flags == 0;
  }
}

// Emplaces alternative T in `out` (reusing it when already there) and returns it.
template <typename T>
T& slot(Packet& out) {
  if (auto* p = std::get_if<T>(&out)) return *p;
  return out.emplace<T>();
}

bool sent_by_servers_only(PacketType type) noexcept {
  return type == PacketType::Connack || type == PacketType::Suback || type == PacketType::Unsuback ||
         type == PacketType::Pingresp;
}

// What is wrong with a fixed header's first byte (type and flags), or null: checked as soon as
// that byte arrives, so garbage is refused before its "remaining length" is waited for.
const char* header_error(std::uint8_t first_byte, std::optional<ProtocolVersion> version) noexcept {
  const auto raw_type = static_cast<std::uint8_t>(first_byte >> 4);
  if (raw_type == 0 || (raw_type == 15 && version != ProtocolVersion::V5)) return "reserved packet type";
  if (!flags_valid(static_cast<PacketType>(raw_type), static_cast<std::uint8_t>(first_byte & 0x0F),
                   version == ProtocolVersion::V31))
    return "reserved fixed header flags";
  return nullptr;
}

DecodeStatus decode_frame(std::uint8_t first_byte, std::span<const std::uint8_t> body,
                          ProtocolVersion version, Packet& out, DecodeError& error,
                          ConnectResult& connect) {
  const auto raw_type = static_cast<std::uint8_t>(first_byte >> 4);
  const auto flags = static_cast<std::uint8_t>(first_byte & 0x0F);
  const bool v5 = version == ProtocolVersion::V5;
  Reader r(body);
  error.protocol_level = 0;
  bool ok = false;
  if (const char* what = header_error(first_byte, version)) {
    malformed(error, what);
    return DecodeStatus::Error;
  }
  const auto type = static_cast<PacketType>(raw_type);
  switch (type) {
    case PacketType::Connect: ok = decode_connect(r, slot<Connect>(out), error, connect); break;
    case PacketType::Connack: ok = decode_connack(r, v5, slot<Connack>(out), error); break;
    case PacketType::Publish: ok = decode_publish(flags, r, v5, slot<Publish>(out), error); break;
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp: ok = decode_ack(type, r, v5, slot<Ack>(out), error); break;
    case PacketType::Subscribe: ok = decode_subscribe(r, v5, slot<Subscribe>(out), error); break;
    case PacketType::Suback: ok = decode_suback(r, v5, slot<Suback>(out), error); break;
    case PacketType::Unsubscribe:
      ok = decode_unsubscribe(r, v5, slot<Unsubscribe>(out), error);
      break;
    case PacketType::Unsuback: ok = decode_unsuback(r, v5, slot<Unsuback>(out), error); break;
    case PacketType::Pingreq:
      slot<Pingreq>(out);
      ok = at_end(r, error);
      break;
    case PacketType::Pingresp:
      slot<Pingresp>(out);
      ok = at_end(r, error);
      break;
    case PacketType::Disconnect: {
      auto& d = slot<Disconnect>(out);
      ok = v5 ? decode_reason_only(type, r, d.reason, d.properties, error) : at_end(r, error);
      if (!v5) d = Disconnect{};
      break;
    }
    case PacketType::Auth: {
      auto& a = slot<Auth>(out);
      ok = decode_reason_only(type, r, a.reason, a.properties, error);
      break;
    }
  }
  return ok ? DecodeStatus::Packet : DecodeStatus::Error;
}

}  // namespace

DecodeStatus decode_packet(std::uint8_t first_byte, std::span<const std::uint8_t> body,
                           ProtocolVersion version, Packet& out, DecodeError& error) {
  ConnectResult connect;
  return decode_frame(first_byte, body, version, out, error, connect);
}

DecodeStatus Decoder::next(std::span<const std::uint8_t>& input, Packet& out, DecodeError& error) {
  if (failed_) {
    error = error_;  // the first error again: the stream cannot be resynchronised
    return DecodeStatus::Error;
  }
  const auto finish = [&](std::uint8_t first, std::span<const std::uint8_t> body, std::size_t header) {
    ConnectResult connect;
    const bool lenient = version_ != ProtocolVersion::V5;
    DecodeStatus st =
        decode_frame(first, body, version_.value_or(ProtocolVersion::V311), out, error, connect);
    if (connect.version) version_ = connect.version;  // also on a failed CONNECT, see DecodeError
    // A 5.0 CONNECT's remaining length was read before its version was known: now it is
    // checked for its shortest form [MQTT-1.5.5-1].
    if (st == DecodeStatus::Packet && lenient && version_ == ProtocolVersion::V5 &&
        header - 1 > wire::varint_size(static_cast<std::uint32_t>(body.size()))) {
      malformed(error, "remaining length not in its shortest form");
      error.protocol_level = 5;  // answered with a 5.0 CONNACK
      st = DecodeStatus::Error;
    }
    if (st == DecodeStatus::Error) {
      failed_ = true;
      error_ = error;
    }
    return st;
  };
  const auto too_large = [&](std::size_t header, std::uint32_t remaining) {
    if (std::uint64_t{header} + remaining <= max_packet_size_) return false;
    fail(error, ReasonCode::PacketTooLarge, "packet exceeds maximum packet size");
    failed_ = true;
    error_ = error;
    return true;
  };
  // Before CONNECT the version is unknown: its remaining length is read leniently.
  const bool strict_varint = version_ == ProtocolVersion::V5;
  const auto bad_length = [&] {
    malformed(error, "remaining length longer than four bytes or not in its shortest form");
    failed_ = true;
    error_ = error;
    return DecodeStatus::Error;
  };

  if (!partial_ || partial_->empty()) {
    // Fast path: decode straight from the caller's bytes when the whole frame is there.
    if (input.empty()) return DecodeStatus::NeedMore;
    if (const char* what = header_error(input[0], version_)) {
      malformed(error, what);
      failed_ = true;
      error_ = error;
      return DecodeStatus::Error;
    }
    if (refuse_server_packets_ && sent_by_servers_only(static_cast<PacketType>(input[0] >> 4))) {
      fail(error, ReasonCode::ProtocolError, "packet a client must not send");
      failed_ = true;
      error_ = error;
      return DecodeStatus::Error;
    }
    std::uint32_t remaining = 0;
    std::size_t used = 0;
    const auto vs = wire::parse_varint(input.data() + 1, input.size() - 1, remaining, used, strict_varint);
    if (vs == wire::VarintStatus::Malformed) return bad_length();
    if (vs == wire::VarintStatus::Ok) {
      const std::size_t header = 1 + used;
      if (too_large(header, remaining)) return DecodeStatus::Error;
      const std::size_t total = header + remaining;
      if (input.size() >= total) {
        const auto frame = input.first(total);
        input = input.subspan(total);
        return finish(frame[0], frame.subspan(header), header);
      }
    }
    // Buffer what was received; growth follows the bytes that arrive, never the announced
    // length, so a hostile remaining length costs nothing until its bytes come in.
    if (!partial_) partial_ = std::make_unique<std::string>();
    partial_->assign(reinterpret_cast<const char*>(input.data()), input.size());
    input = input.subspan(input.size());
    return DecodeStatus::NeedMore;
  }

  std::string& partial = *partial_;
  for (;;) {
    const auto* buf = reinterpret_cast<const std::uint8_t*>(partial.data());
    std::uint32_t remaining = 0;
    std::size_t used = 0;
    const auto vs = wire::parse_varint(buf + 1, partial.size() - 1, remaining, used, strict_varint);
    if (vs == wire::VarintStatus::Malformed) return bad_length();
    if (vs == wire::VarintStatus::NeedMore) {
      if (input.empty()) return DecodeStatus::NeedMore;
      partial.push_back(static_cast<char>(input[0]));
      input = input.subspan(1);
      continue;
    }
    const std::size_t header = 1 + used;
    if (too_large(header, remaining)) return DecodeStatus::Error;
    const std::size_t total = header + remaining;
    const std::size_t take = std::min(total - partial.size(), input.size());
    partial.append(reinterpret_cast<const char*>(input.data()), take);
    input = input.subspan(take);
    if (partial.size() < total) return DecodeStatus::NeedMore;
    const auto* frame = reinterpret_cast<const std::uint8_t*>(partial.data());
    const DecodeStatus st = finish(frame[0], std::span<const std::uint8_t>(frame + header, remaining), header);
    if (partial.capacity() > kKeepBuffer) {
      partial_.reset();
    } else {
      partial.clear();
    }
    return st;
  }
}

}  // namespace broker::protocol
