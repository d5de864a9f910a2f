#pragma once
// Internal wire primitives shared by the decoder and the encoder: bounds-checked reading from a
// span, and two writers with one interface (a counter and an appender) so the encoder sizes a
// packet with the very code that writes it.
//
// Thread safety: plain values over caller-owned memory.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace broker::protocol::wire {

inline constexpr std::uint32_t kMaxVarint = 268'435'455;  // four 7-bit groups
inline constexpr std::size_t kMaxString = 65'535;

enum class VarintStatus { Ok, NeedMore, Malformed };

// Parses a Variable Byte Integer from the front of [p, p+n). A fifth byte (continuation bit set
// on the fourth) is malformed. With `shortest_only` (MQTT 5.0, [MQTT-1.5.5-1]) so is a longer
// form than the value needs, such as 0x80 0x00 for 0; 3.1.1 has no such rule and a longer form
// still parses to one unambiguous value, so its remaining lengths are read leniently.
inline VarintStatus parse_varint(const std::uint8_t* p, std::size_t n, std::uint32_t& value,
                                 std::size_t& used, bool shortest_only = true) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i >= n) return VarintStatus::NeedMore;
    v |= static_cast<std::uint32_t>(p[i] & 0x7F) << (7 * i);
    if ((p[i] & 0x80) == 0) {
      if (shortest_only && i > 0 && p[i] == 0) return VarintStatus::Malformed;  // not minimal
      value = v;
      used = i + 1;
      return VarintStatus::Ok;
    }
  }
  return VarintStatus::Malformed;
}

inline std::size_t varint_size(std::uint32_t v) noexcept {
  return v < 128u ? 1 : v < 16'384u ? 2 : v < 2'097'152u ? 3 : 4;
}

// Reads big-endian fields; every read fails (returns false, consumes nothing) past the end.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) noexcept : data_(data) {}

  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  bool empty() const noexcept { return pos_ == data_.size(); }

  bool u8(std::uint8_t& v) noexcept {
    if (remaining() < 1) return false;
    v = data_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (remaining() < 4) return false;
    v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
        (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool varint(std::uint32_t& v) noexcept {
    std::size_t used = 0;
    if (parse_varint(data_.data() + pos_, remaining(), v, used) != VarintStatus::Ok) return false;
    pos_ += used;
    return true;
  }
  // `n` raw bytes, viewed in place.
  bool bytes(std::size_t n, std::string_view& v) noexcept {
    if (remaining() < n) return false;
    v = std::string_view(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  // Two-byte length then that many bytes (Binary Data and UTF-8 strings before validation).
  bool prefixed(std::string_view& v) noexcept {
    std::uint16_t len = 0;
    const std::size_t start = pos_;
    if (!u16(len)) return false;
    if (!bytes(len, v)) {
      pos_ = start;
      return false;
    }
    return true;
  }
  // The rest, viewed in place.
  std::string_view rest() noexcept {
    std::string_view v(reinterpret_cast<const char*>(data_.data() + pos_), remaining());
    pos_ = data_.size();
    return v;
  }
  // A sub-reader over the next `n` bytes (a property block); false when they are not there.
  bool sub(std::size_t n, Reader& out) noexcept {
    if (remaining() < n) return false;
    out = Reader(data_.subspan(pos_, n));
    pos_ += n;
    return true;
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

// Counts bytes; flags a field that cannot be encoded (string too long).
class Counter {
 public:
  void u8(std::uint8_t) noexcept { n_ += 1; }
  void u16(std::uint16_t) noexcept { n_ += 2; }
  void u32(std::uint32_t) noexcept { n_ += 4; }
  void varint(std::uint32_t v) noexcept {
    if (v > kMaxVarint) ok_ = false;
    n_ += varint_size(v);
  }
  void raw(std::string_view s) noexcept { n_ += s.size(); }
  void prefixed(std::string_view s) noexcept {
    if (s.size() > kMaxString) ok_ = false;
    n_ += 2 + s.size();
  }
  void fail() noexcept { ok_ = false; }
  std::size_t size() const noexcept { return n_; }
  bool ok() const noexcept { return ok_; }

 private:
  std::size_t n_ = 0;
  bool ok_ = true;
};

// Appends to a string; the caller has checked with Counter that everything fits.
class Appender {
 public:
  explicit Appender(std::string& out) noexcept : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void varint(std::uint32_t v) {
    do {
      auto b = static_cast<std::uint8_t>(v & 0x7F);
      v >>= 7;
      if (v != 0) b = static_cast<std::uint8_t>(b | 0x80);
      u8(b);
    } while (v != 0);
  }
  void raw(std::string_view s) { out_.append(s); }
  void prefixed(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    raw(s);
  }
  void fail() noexcept {}

 private:
  std::string& out_;
};

}  // namespace broker::protocol::wire
