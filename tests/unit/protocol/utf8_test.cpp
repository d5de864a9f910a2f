#include <catch2/catch.hpp>

#include <string>

#include "protocol/utf8.hpp"

namespace broker::protocol {
namespace {

using namespace std::string_view_literals;

TEST_CASE("utf8: accepts well-formed text [MQTT-1.5.4-1]", "[protocol][utf8]") {
  CHECK(valid_utf8_string(""));
  CHECK(valid_utf8_string("plain/ascii"));
  CHECK(valid_utf8_string("\xC2\x80"));          // U+0080, smallest two-byte
  CHECK(valid_utf8_string("\xDF\xBF"));          // U+07FF
  CHECK(valid_utf8_string("\xE0\xA0\x80"));      // U+0800
  CHECK(valid_utf8_string("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  CHECK(valid_utf8_string("\xEE\x80\x80"));      // U+E000
  CHECK(valid_utf8_string("\xEF\xBB\xBF"));      // BOM: kept, not an error [MQTT-1.5.4-3]
  CHECK(valid_utf8_string("\xEF\xBF\xBF"));      // U+FFFF non-character: SHOULD NOT only
  CHECK(valid_utf8_string("\xF0\x90\x80\x80"));  // U+10000
  CHECK(valid_utf8_string("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  CHECK(valid_utf8_string("\x01\x1F\x7F"));      // control characters: SHOULD NOT only
}

TEST_CASE("utf8: rejects ill-formed text [MQTT-1.5.4-1]", "[protocol][utf8]") {
  CHECK_FALSE(valid_utf8_string("\x80"));              // lone continuation
  CHECK_FALSE(valid_utf8_string("\xC0\x80"));          // overlong U+0000
  CHECK_FALSE(valid_utf8_string("\xC1\xBF"));          // overlong
  CHECK_FALSE(valid_utf8_string("\xE0\x9F\xBF"));      // overlong three-byte
  CHECK_FALSE(valid_utf8_string("\xED\xA0\x80"));      // U+D800 surrogate
  CHECK_FALSE(valid_utf8_string("\xED\xBF\xBF"));      // U+DFFF surrogate
  CHECK_FALSE(valid_utf8_string("\xF0\x8F\xBF\xBF"));  // overlong four-byte
  CHECK_FALSE(valid_utf8_string("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8_string("\xF5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8_string("\xFF"));
  CHECK_FALSE(valid_utf8_string("\xE2\x82"));          // truncated at the end
  CHECK_FALSE(valid_utf8_string("\xE2\x28\xA1"));      // bad continuation
  CHECK_FALSE(valid_utf8_string("\xF0\x9F\x98"));
}

TEST_CASE("utf8: U+0000 is refused in strings but allowed in payloads [MQTT-1.5.4-2]",
          "[protocol][utf8]") {
  CHECK_FALSE(valid_utf8_string("a\0b"sv));
  CHECK(valid_utf8("a\0b"sv));
  CHECK_FALSE(valid_utf8("a\xED\xA0\x80"sv));
}

}  // namespace
}  // namespace broker::protocol
