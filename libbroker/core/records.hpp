#pragma once
// Conversions between the core's in-memory state and the Store's records (store.hpp).
//
// Thread safety: pure functions.
#include <cstdint>

#include "broker/store.hpp"
#include "core/delivery.hpp"
#include "core/message.hpp"
#include "core/session.hpp"

namespace broker::core {

StoredMessage to_record(const Message& message);
// The message a record holds; `releaser` as for Message::create.
MessageRef from_record(StoredMessage&& record, MessageReleaser* releaser);

// The session as a record, `expires_at_ms` as the session has it (0 while connected).
StoredSession to_record(const Session& session);

StoredDelivery to_record(const std::string& client_id, const Delivery& delivery,
                         DeliveryState state, std::uint16_t packet_id);

}  // namespace broker::core
