#pragma once
// Record encoding shared by the stores: the on-disk format of every value and key the LMDB
// store writes (the memory store uses the same keys, so both sort alike).
//
// A value is an envelope: [format version u8][kind u8][body][CRC32C u32], integers little
// endian, strings and lists prefixed with a u32 count. The checksum covers everything before
// it, so a torn or flipped record reads as Corruption instead of a plausible wrong value.
// Keys that must sort by number (message ids, log sequences) are 8-byte big endian.
//
// Decoding trusts nothing: every read is bounds-checked, counts are checked against the bytes
// left before anything is allocated, and any surplus or shortfall is Corruption.
//
// Thread safety: free functions over values; safe from any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/status.hpp"
#include "broker/store.hpp"

namespace broker::storage {

// Bump when a body layout changes; readers refuse newer versions and keep decoders for older.
// Each record carries the version that wrote it, so one store may hold records of several.
//   1: first layout.
//   2: a delivery ends with its shared tag (StoredDelivery::shared_tag), which its key holds too.
//   3: same layout; a delivery that is not shared may carry a retained copy's tag
//      (kFirstRetainedCopyTag and up), which a version 2 reader refuses as corrupt.
//   4: same layouts; a large value may be stored in chunks, its key holding a ChunkedRef,
//      which a version 3 reader refuses as corrupt.
inline constexpr std::uint8_t kFormatVersion = 4;
// Written once in the meta record so a foreign LMDB environment is told apart from ours.
inline constexpr std::string_view kStoreMagic = "libbroker-store";

enum class RecordKind : std::uint8_t {
  Meta = 1,
  Message = 2,
  Session = 3,
  Delivery = 4,
  LogRecord = 5,
  Counter = 6,  // a bare u64: log next sequence, consumer offsets
  ChunkedRef = 7,
};

struct MetaRecord {
  std::string magic;
  std::uint32_t format_version = 0;
};

// Stands, under a record's own key, for a record stored in `count` chunks: the values under
// chunk_key(id, 0 .. count-1), which joined are the record's `bytes` bytes (envelope and
// checksum included).
struct ChunkedRef {
  std::uint64_t id = 0;
  std::uint64_t bytes = 0;
  std::uint32_t count = 0;
};

// CRC32C (Castagnoli), the polynomial storage systems use because hardware computes it.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

std::string encode_meta(const MetaRecord& meta);
std::string encode_message(const StoredMessage& message);
std::string encode_session(const StoredSession& session);
std::string encode_delivery(const StoredDelivery& delivery);
std::string encode_log_record(const LogRecord& record);
std::string encode_counter(std::uint64_t value);
std::string encode_chunked_ref(const ChunkedRef& ref);

// Each returns Corruption with a reason ("checksum mismatch", "truncated", "unsupported
// format version 7", ...) for bytes that are not a valid record of that kind.
// decode_meta accepts any envelope version: the meta layout is frozen so that a reader can
// always learn which version wrote a directory.
Result<MetaRecord> decode_meta(std::string_view bytes);
Result<StoredMessage> decode_message(std::string_view bytes);
Result<StoredSession> decode_session(std::string_view bytes);
Result<StoredDelivery> decode_delivery(std::string_view bytes);
Result<LogRecord> decode_log_record(std::string_view bytes);
Result<std::uint64_t> decode_counter(std::string_view bytes);
Result<ChunkedRef> decode_chunked_ref(std::string_view bytes);
// Whether a stored value claims to be a ChunkedRef (its kind byte; decoding checks the rest).
bool is_chunked_ref(std::string_view bytes) noexcept;

// Payload bytes a record accounts for in log trimming.
inline std::uint64_t payload_bytes(const StoredMessage& m) { return m.message.payload.size(); }

// --- keys ---
std::string u64_key(std::uint64_t value);  // 8 bytes big endian: byte order = numeric order
std::optional<std::uint64_t> parse_u64_key(std::string_view key) noexcept;
// client id + 0x00 + u64_key(message id) [+ 4-byte big-endian shared tag when not 0]: one
// session's deliveries are contiguous and in id order, a message's copies side by side.
// Client ids are UTF-8 without U+0000 (MQTT), so the separator cannot be ambiguous.
std::string delivery_key(std::string_view client_id, std::uint64_t message_id,
                         std::uint32_t shared_tag = 0);
// u64_key(id) + 4-byte big-endian index: a record's chunks are contiguous and in order.
std::string chunk_key(std::uint64_t id, std::uint32_t index);
// The prefix all of one client's delivery keys share.
std::string delivery_prefix(std::string_view client_id);

// Lower-case hex, for golden files and error messages.
std::string to_hex(std::string_view bytes);
// Empty optional on odd length or a non-hex digit.
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace broker::storage
