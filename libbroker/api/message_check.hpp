#pragma once
// The checks a message published through Broker::publish passes: the ones a client's PUBLISH
// meets in the codec and the connection (topic, UTF-8 strings, lengths, QoS, topic levels),
// plus the size of the largest packet a receiver would be sent (a 5.0 PUBLISH with its
// properties), so the API cannot hand subscribers what no client could have sent.
//
// Thread safety: a pure function.
#include "broker/message.hpp"
#include "broker/options.hpp"
#include "broker/status.hpp"

namespace broker::api {

// OK, or InvalidArgument saying which field is wrong.
Status check_message(const Message& message, const Limits& limits);

}  // namespace broker::api
