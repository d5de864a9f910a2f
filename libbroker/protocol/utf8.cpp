#include "protocol/utf8.hpp"

#include <cstddef>
#include <cstdint>

namespace broker::protocol {
namespace {

// One validator for both entry points; `allow_nul` is the only difference.
bool check(std::string_view text, bool allow_nul) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0 && !allow_nul) return false;
      ++i;
      continue;
    }
    // Lead byte decides the length and the legal range of the second byte (Unicode table 3-7),
    // which rules out overlong forms, surrogates and code points above U+10FFFF in one test.
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3; lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3; hi = 0x9F;  // excludes the surrogates
    } else if (c == 0xF0) {
      len = 4; lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4; hi = 0x8F;
    } else {
      return false;  // continuation byte as lead, C0/C1 overlong leads, F5..FF
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

bool valid_utf8(std::string_view text) noexcept { return check(text, true); }

bool valid_utf8_string(std::string_view text) noexcept { return check(text, false); }

}  // namespace broker::protocol
