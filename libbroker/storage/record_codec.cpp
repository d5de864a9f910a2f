#include "storage/record_codec.hpp"

#include <array>
#include <utility>

#include <fmt/format.h>

namespace broker::storage {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() noexcept {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

// Smallest encoded size of one list element, used to reject counts the bytes cannot hold
// before a hostile count reaches reserve().
constexpr std::size_t kMinStringBytes = 4;
constexpr std::size_t kMinSubscriptionBytes = kMinStringBytes + 1 + 1 + 1 + 4;
constexpr std::size_t kEnvelopeBytes = 1 + 1 + 4;  // version, kind, checksum

const char* kind_name(RecordKind kind) noexcept {
  switch (kind) {
    case RecordKind::Meta: return "meta";
    case RecordKind::Message: return "message";
    case RecordKind::Session: return "session";
    case RecordKind::Delivery: return "delivery";
    case RecordKind::LogRecord: return "log";
    case RecordKind::Counter: return "counter";
    case RecordKind::ChunkedRef: return "chunk reference";
  }
  return "unknown";
}

class Writer {
 public:
  explicit Writer(RecordKind kind, std::uint8_t version = kFormatVersion) {
    out_.push_back(static_cast<char>(version));
    out_.push_back(static_cast<char>(kind));
  }
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { fixed(v, 2); }
  void u32(std::uint32_t v) { fixed(v, 4); }
  void u64(std::uint64_t v) { fixed(v, 8); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string finish() && {
    u32(crc32c(out_));
    return std::move(out_);
  }

 private:
  void fixed(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  std::string out_;
};

// Reads a record body. The first failure sticks: later reads return zeros, and the caller
// checks status() once at the end, so decoders stay linear and cannot over-read.
class Reader {
 public:
  explicit Reader(std::string_view body) : in_(body) {}

  std::uint8_t u8() { return static_cast<std::uint8_t>(fixed(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(fixed(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(fixed(4)); }
  std::uint64_t u64() { return fixed(8); }
  bool boolean() {
    std::uint8_t v = u8();
    if (v > 1) fail("bad boolean");
    return v == 1;
  }
  std::string str() {
    std::uint32_t n = u32();
    if (!ok()) return {};
    if (n > remaining()) {
      fail("truncated string");
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A list count whose elements take at least `min_bytes` each.
  std::size_t count(std::size_t min_bytes) {
    std::uint32_t n = u32();
    if (ok() && static_cast<std::uint64_t>(n) * min_bytes > remaining()) {
      fail("list count exceeds record size");
      return 0;
    }
    return ok() ? n : 0;
  }
  void fail(std::string_view why) {
    if (error_.empty()) error_ = std::string(why);
  }
  bool ok() const noexcept { return error_.empty(); }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  // Corruption unless every byte was consumed without error.
  Status status(RecordKind kind) const {
    if (ok() && remaining() != 0) {
      return Status::corruption(fmt::format("{} record: {} trailing bytes", kind_name(kind), remaining()));
    }
    if (!ok()) return Status::corruption(fmt::format("{} record: {}", kind_name(kind), error_));
    return Status::ok();
  }

 private:
  std::uint64_t fixed(std::size_t bytes) {
    if (!ok()) return 0;
    if (remaining() < bytes) {
      fail("truncated");
      pos_ = in_.size();
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += bytes;
    return v;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::string error_;
};

// Checks the envelope and returns the body. `any_version` lets the meta record be read from
// directories written by newer versions, to report which version that was.
Result<std::string_view> open_envelope(std::string_view bytes, RecordKind kind,
                                       bool any_version = false) {
  if (bytes.size() < kEnvelopeBytes) {
    return Status::corruption(fmt::format("{} record: truncated ({} bytes)", kind_name(kind), bytes.size()));
  }
  std::string_view covered = bytes.substr(0, bytes.size() - 4);
  Reader tail(bytes.substr(bytes.size() - 4));
  if (tail.u32() != crc32c(covered)) {
    return Status::corruption(fmt::format("{} record: checksum mismatch", kind_name(kind)));
  }
  auto version = static_cast<std::uint8_t>(covered[0]);
  if (version == 0 || (!any_version && version > kFormatVersion)) {
    return Status::corruption(fmt::format("unsupported format version {}", version));
  }
  auto found = static_cast<std::uint8_t>(covered[1]);
  if (found != static_cast<std::uint8_t>(kind)) {
    return Status::corruption(
        fmt::format("{} record: found record kind {}", kind_name(kind), found));
  }
  return covered.substr(2);
}

void write_message(Writer& w, const Message& m) {
  w.str(m.topic);
  w.str(m.payload);
  w.u8(m.qos);
  w.boolean(m.retain);
  std::uint8_t present = 0;
  if (m.message_expiry_interval) present |= 1u;
  if (m.content_type) present |= 2u;
  if (m.response_topic) present |= 4u;
  if (m.correlation_data) present |= 8u;
  if (m.payload_format_indicator) present |= 16u;
  w.u8(present);
  if (m.message_expiry_interval) w.u32(*m.message_expiry_interval);
  if (m.content_type) w.str(*m.content_type);
  if (m.response_topic) w.str(*m.response_topic);
  if (m.correlation_data) w.str(*m.correlation_data);
  if (m.payload_format_indicator) w.u8(*m.payload_format_indicator);
  w.u32(static_cast<std::uint32_t>(m.user_properties.size()));
  for (const auto& [k, v] : m.user_properties) {
    w.str(k);
    w.str(v);
  }
}

Message read_message(Reader& r) {
  Message m;
  m.topic = r.str();
  m.payload = r.str();
  m.qos = r.u8();
  if (m.qos > 2) r.fail("bad QoS");
  m.retain = r.boolean();
  std::uint8_t present = r.u8();
  if (present & ~31u) r.fail("unknown property flags");
  if (present & 1u) m.message_expiry_interval = r.u32();
  if (present & 2u) m.content_type = r.str();
  if (present & 4u) m.response_topic = r.str();
  if (present & 8u) m.correlation_data = r.str();
  if (present & 16u) m.payload_format_indicator = r.u8();
  std::size_t n = r.count(2 * kMinStringBytes);
  m.user_properties.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.str();
    std::string v = r.str();
    m.user_properties.emplace_back(std::move(k), std::move(v));
  }
  return m;
}

void write_stored_message(Writer& w, const StoredMessage& m) {
  w.u64(m.id);
  write_message(w, m.message);
  w.str(m.origin_client_id);
  w.u64(m.arrival_ms);
  w.u64(m.expires_at_ms);
}

StoredMessage read_stored_message(Reader& r) {
  StoredMessage m;
  m.id = r.u64();
  m.message = read_message(r);
  m.origin_client_id = r.str();
  m.arrival_ms = r.u64();
  m.expires_at_ms = r.u64();
  return m;
}

template <typename T, typename ReadBody>
Result<T> decode(std::string_view bytes, RecordKind kind, ReadBody read_body) {
  auto body = open_envelope(bytes, kind);
  if (!body) return body.status();
  Reader r(body.value());
  T value = read_body(r);
  if (Status st = r.status(kind); !st) return st;
  return value;
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) noexcept {
  crc = ~crc;
  for (char ch : data) crc = kCrcTable[(crc ^ static_cast<unsigned char>(ch)) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::string encode_meta(const MetaRecord& meta) {
  Writer w(RecordKind::Meta);
  w.str(meta.magic);
  w.u32(meta.format_version);
  return std::move(w).finish();
}

std::string encode_message(const StoredMessage& message) {
  Writer w(RecordKind::Message);
  write_stored_message(w, message);
  return std::move(w).finish();
}

std::string encode_session(const StoredSession& s) {
  Writer w(RecordKind::Session);
  w.str(s.client_id);
  w.u8(s.protocol_version);
  w.u32(s.expiry_interval);
  w.u64(s.expires_at_ms);
  w.u32(static_cast<std::uint32_t>(s.subscriptions.size()));
  for (const auto& sub : s.subscriptions) {
    w.str(sub.filter);
    w.u8(sub.qos);
    w.u8(static_cast<std::uint8_t>((sub.no_local ? 1u : 0u) | (sub.retain_as_published ? 2u : 0u)));
    w.u8(sub.retain_handling);
    w.u32(sub.subscription_id);
  }
  w.boolean(s.will.has_value());
  if (s.will) {
    write_message(w, s.will->message);
    w.u32(s.will->delay_interval);
    w.u64(s.will->publish_at_ms);
  }
  w.u32(static_cast<std::uint32_t>(s.inbound_qos2.size()));
  for (std::uint16_t id : s.inbound_qos2) w.u16(id);
  return std::move(w).finish();
}

std::string encode_delivery(const StoredDelivery& d) {
  Writer w(RecordKind::Delivery);
  w.str(d.client_id);
  w.u64(d.message_id);
  w.u8(d.qos);
  w.u8(static_cast<std::uint8_t>((d.retain ? 1u : 0u) | (d.shared ? 2u : 0u)));
  w.u32(static_cast<std::uint32_t>(d.subscription_ids.size()));
  for (std::uint32_t id : d.subscription_ids) w.u32(id);
  w.u8(static_cast<std::uint8_t>(d.state));
  w.u16(d.packet_id);
  w.u32(d.shared_tag);
  return std::move(w).finish();
}

std::string encode_log_record(const LogRecord& record) {
  Writer w(RecordKind::LogRecord);
  w.u64(record.sequence);
  write_stored_message(w, record.message);
  return std::move(w).finish();
}

std::string encode_counter(std::uint64_t value) {
  Writer w(RecordKind::Counter);
  w.u64(value);
  return std::move(w).finish();
}

Result<MetaRecord> decode_meta(std::string_view bytes) {
  auto body = open_envelope(bytes, RecordKind::Meta, /*any_version=*/true);
  if (!body) return body.status();
  Reader r(body.value());
  MetaRecord meta;
  meta.magic = r.str();
  meta.format_version = r.u32();
  if (Status st = r.status(RecordKind::Meta); !st) return st;
  return meta;
}

Result<StoredMessage> decode_message(std::string_view bytes) {
  return decode<StoredMessage>(bytes, RecordKind::Message, read_stored_message);
}

Result<StoredSession> decode_session(std::string_view bytes) {
  return decode<StoredSession>(bytes, RecordKind::Session, [](Reader& r) {
    StoredSession s;
    s.client_id = r.str();
    s.protocol_version = r.u8();
    if (s.protocol_version < 3 || s.protocol_version > 5) r.fail("bad protocol version");
    s.expiry_interval = r.u32();
    s.expires_at_ms = r.u64();
    std::size_t n = r.count(kMinSubscriptionBytes);
    s.subscriptions.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i) {
      StoredSubscription sub;
      sub.filter = r.str();
      sub.qos = r.u8();
      if (sub.qos > 2) r.fail("bad subscription QoS");
      std::uint8_t flags = r.u8();
      if (flags & ~3u) r.fail("bad subscription flags");
      sub.no_local = (flags & 1u) != 0;
      sub.retain_as_published = (flags & 2u) != 0;
      sub.retain_handling = r.u8();
      if (sub.retain_handling > 2) r.fail("bad retain handling");
      sub.subscription_id = r.u32();
      s.subscriptions.push_back(std::move(sub));
    }
    if (r.boolean()) {
      StoredWill will;
      will.message = read_message(r);
      will.delay_interval = r.u32();
      will.publish_at_ms = r.u64();
      s.will = std::move(will);
    }
    std::size_t q = r.count(2);
    s.inbound_qos2.reserve(q);
    for (std::size_t i = 0; i < q && r.ok(); ++i) s.inbound_qos2.push_back(r.u16());
    return s;
  });
}

Result<StoredDelivery> decode_delivery(std::string_view bytes) {
  // Runs only after the envelope was checked, so the version byte is there.
  return decode<StoredDelivery>(bytes, RecordKind::Delivery, [bytes](Reader& r) {
    const auto version = static_cast<std::uint8_t>(bytes[0]);
    StoredDelivery d;
    d.client_id = r.str();
    d.message_id = r.u64();
    d.qos = r.u8();
    if (d.qos > 2) r.fail("bad QoS");
    std::uint8_t flags = r.u8();
    if (flags & ~3u) r.fail("bad delivery flags");
    d.retain = (flags & 1u) != 0;
    d.shared = (flags & 2u) != 0;
    std::size_t n = r.count(4);
    d.subscription_ids.reserve(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i) d.subscription_ids.push_back(r.u32());
    std::uint8_t state = r.u8();
    if (state > static_cast<std::uint8_t>(DeliveryState::AwaitPubcomp)) r.fail("bad delivery state");
    d.state = static_cast<DeliveryState>(state);
    d.packet_id = r.u16();
    if (version >= 2) d.shared_tag = r.u32();
    if (version < 3 && !d.shared && d.shared_tag > kRetainZeroCopyTag)
      r.fail("shared tag on a delivery that is not shared");
    return d;
  });
}

Result<LogRecord> decode_log_record(std::string_view bytes) {
  return decode<LogRecord>(bytes, RecordKind::LogRecord, [](Reader& r) {
    LogRecord rec;
    rec.sequence = r.u64();
    rec.message = read_stored_message(r);
    return rec;
  });
}

Result<std::uint64_t> decode_counter(std::string_view bytes) {
  return decode<std::uint64_t>(bytes, RecordKind::Counter, [](Reader& r) { return r.u64(); });
}

std::string encode_chunked_ref(const ChunkedRef& ref) {
  Writer w(RecordKind::ChunkedRef);
  w.u64(ref.id);
  w.u64(ref.bytes);
  w.u32(ref.count);
  return std::move(w).finish();
}

Result<ChunkedRef> decode_chunked_ref(std::string_view bytes) {
  return decode<ChunkedRef>(bytes, RecordKind::ChunkedRef, [](Reader& r) {
    ChunkedRef ref;
    ref.id = r.u64();
    ref.bytes = r.u64();
    ref.count = r.u32();
    if (ref.count == 0 || ref.bytes < ref.count) r.fail("bad chunk count");
    return ref;
  });
}

bool is_chunked_ref(std::string_view bytes) noexcept {
  return bytes.size() >= kEnvelopeBytes && static_cast<std::uint8_t>(bytes[1]) ==
                                               static_cast<std::uint8_t>(RecordKind::ChunkedRef);
}

std::string u64_key(std::uint64_t value) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[static_cast<std::size_t>(i)] = static_cast<char>(value & 0xFFu);
    value >>= 8;
  }
  return key;
}

std::optional<std::uint64_t> parse_u64_key(std::string_view key) noexcept {
  if (key.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : key) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string chunk_key(std::uint64_t id, std::uint32_t index) {
  return u64_key(id) + u64_key(index).substr(4);
}

std::string delivery_prefix(std::string_view client_id) {
  std::string key(client_id);
  key.push_back('\0');
  return key;
}

std::string delivery_key(std::string_view client_id, std::uint64_t message_id,
                         std::uint32_t shared_tag) {
  std::string key = delivery_prefix(client_id) + u64_key(message_id);
  if (shared_tag != 0) key += u64_key(shared_tag).substr(4);
  return key;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xFu]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]);
    int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace broker::storage
