#pragma once
// UTF-8 validation as MQTT needs it (MQTT 5.0 section 1.5.4, 3.1.1 section 1.5.3).
//
// A UTF-8 Encoded String MUST be well-formed UTF-8 as Unicode defines it (no overlong forms, no
// surrogates U+D800..U+DFFF, nothing above U+10FFFF) and MUST NOT contain U+0000. The other
// control characters and the non-characters are only "SHOULD NOT" for senders, so they are
// accepted here: rejecting them would refuse packets the specification allows.
//
// Thread safety: pure functions.
#include <string_view>

namespace broker::protocol {

// Well-formed UTF-8; U+0000 allowed. This is the test for a payload sent with Payload Format
// Indicator 1 (the broker answers PayloadFormatInvalid when it fails).
bool valid_utf8(std::string_view text) noexcept;

// An MQTT UTF-8 Encoded String: valid_utf8 and no U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2].
bool valid_utf8_string(std::string_view text) noexcept;

}  // namespace broker::protocol
