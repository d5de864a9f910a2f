#include "core/client_connection.hpp"

#include <algorithm>
#include <span>

#include "core/engine.hpp"
#include "core/publish_rules.hpp"
#include "core/worker_core.hpp"
#include "protocol/encoder.hpp"
#include "protocol/topic.hpp"
#include "protocol/utf8.hpp"
#include "protocol/wire.hpp"
#include "util/log.hpp"

namespace broker::core {

using protocol::PacketType;
using protocol::ProtocolVersion;

namespace {

// Longest client id of a persistent session (the store's key limit, with room for its suffixes).
constexpr std::size_t kMaxStoredClientIdLength = 480;
// Longest topic the broker gives an outbound alias: vehicles' topics are far shorter, and an
// alias holds its topic for the connection's life.
constexpr std::size_t kMaxAliasedTopicLength = 256;
// An unfinished packet this large is given up (its client disconnected) while the worker
// holds too many bytes of unfinished packets.
constexpr std::size_t kLargeUnfinishedBytes = 1u << 20;
// CONNECTs up to this size are taken even while a worker holds too many bytes before CONNECT.
constexpr std::size_t kSmallConnectBytes = 4096;
// A client that opens a socket and never sends CONNECT is dropped after this long.
constexpr std::uint64_t kConnectTimeoutMs = 10000;
// Keep alive credit for a packet still arriving: one per this many of its bytes, so a link
// that carries at least this much in one and a half keep alives keeps a large upload going.
constexpr std::size_t kKeepAliveProgressBytes = 1024;
// Without keep alive, a packet that stops arriving for this long (no kKeepAliveProgressBytes
// more) is given up: what it holds counts against the worker's budget for unfinished packets,
// which a few stalled clients would otherwise hold for good, refusing everyone's large ones.
constexpr std::uint64_t kStalledPacketMs = 60000;

// Protocol level of a CONNECT whose decoding failed, read from the raw bytes, so the CONNACK
// can be written in the client's version. 0 when unknown.
std::uint8_t peek_protocol_level(const std::string& raw) {
  std::size_t pos = 1;
  for (int i = 0; i < 4 && pos < raw.size(); ++i) {
    if ((static_cast<std::uint8_t>(raw[pos++]) & 0x80) == 0) break;
  }
  if (raw.size() >= pos + 7 && raw.compare(pos, 6, std::string("\0\4MQTT", 6)) == 0)
    return static_cast<std::uint8_t>(raw[pos + 6]);
  if (raw.size() >= pos + 9 && raw.compare(pos, 8, std::string("\0\6MQIsdp", 8)) == 0)
    return static_cast<std::uint8_t>(raw[pos + 8]);
  return 0;
}

// Whether `raw` holds a whole frame, or a header the decoder refuses at once (a length field
// longer than four bytes); false while more bytes are needed.
bool frame_complete(const std::string& raw, std::uint32_t max_frame) {
  std::uint32_t remaining = 0;
  std::size_t used = 0;
  const auto* p = reinterpret_cast<const std::uint8_t*>(raw.data());
  switch (protocol::wire::parse_varint(p + 1, raw.size() - 1, remaining, used, false)) {
    case protocol::wire::VarintStatus::NeedMore: return false;
    case protocol::wire::VarintStatus::Malformed: return true;
    case protocol::wire::VarintStatus::Ok: break;
  }
  const std::uint64_t frame = 1 + used + std::uint64_t{remaining};
  return raw.size() >= frame || frame > max_frame;  // too large: the decoder refuses it now
}

// Whether a 3.1.1 CONNACK return code says why a CONNECT is refused; if none does, the client
// is closed without a CONNACK [MQTT-3.2.2-6] (a will's QoS or retain the broker does not take).
bool v3_return_code_applies(ReasonCode reason) {
  switch (reason) {
    case ReasonCode::QosNotSupported:
    case ReasonCode::RetainNotSupported:
    case ReasonCode::TopicNameInvalid:
    case ReasonCode::PacketTooLarge:
    case ReasonCode::ProtocolError:
    case ReasonCode::MalformedPacket: return false;
    default: return to_v3_connack_code(reason) != V3ConnackCode::Accepted;
  }
}

}  // namespace

ClientConnection::ClientConnection(WorkerCore& worker, Link& link)
    : worker_(worker),
      link_(link),
      decoder_(std::min(worker.engine().limits().max_packet_size,
                        worker.engine().limits().max_connect_packet_size)),
      serial_(worker.connection_opened(*this)),
      last_packet_ms_(worker_.engine().now_ms()) {
  decoder_.refuse_server_packets();
}

ClientConnection::~ClientConnection() {
  take_connect_bytes();
  worker_.unfinished_bytes().change(decoder_.buffered_bytes(), 0);
  if (counted_) Counters::sub(worker_.engine().open_connections());
  worker_.connection_closed(*this);
}

std::string ClientConnection::take_connect_bytes() {
  if (!received_before_connect_) return {};
  std::string bytes = std::move(*received_before_connect_);
  received_before_connect_.reset();
  worker_.connecting_bytes().change(bytes.size(), 0);
  return bytes;
}

void ClientConnection::on_bytes(const char* data, std::size_t size) {
  if (state_ == State::Closing || state_ == State::Closed) return;
  const std::size_t unfinished_before = decoder_.buffered_bytes();
  const std::size_t received_before = decoder_.unfinished_bytes();
  const std::uint64_t now_ms = worker_.engine().now_ms();  // once per read, not per packet
  handle_bytes(data, size, now_ms);
  // Keep alive counts whole packets [MQTT-3.1.2-24] (handle_bytes), and each
  // kKeepAliveProgressBytes of a large one still arriving: a big upload on a slow link is not
  // cut off, a trickle of bytes that never ends a packet is.
  // Without keep alive, the time is only that of the packet arriving now (kStalledPacketMs).
  if (state_ == State::Connected &&
      (decoder_.unfinished_bytes() / kKeepAliveProgressBytes > received_before / kKeepAliveProgressBytes ||
       (keep_alive_ == 0 && received_before == 0))) {
    last_packet_ms_ = now_ms;
  }
  // The bytes read before CONNECT go once it is handled; not earlier: handle_bytes may have
  // read past the CONNECT in them.
  if (state_ != State::AwaitConnect) take_connect_bytes();
  const std::size_t unfinished = decoder_.buffered_bytes();
  if (unfinished == unfinished_before) return;
  // Unfinished packets (up to max_packet_size each) are bounded per worker: past the budget a
  // client holding a large one goes, rather than the broker's memory.
  const bool within = worker_.unfinished_bytes().change(unfinished_before, unfinished);
  if (!within && unfinished > kLargeUnfinishedBytes && state_ == State::Connected) {
    disconnect(ReasonCode::QuotaExceeded, "too many bytes held in unfinished packets");
  }
}

void ClientConnection::handle_bytes(const char* data, std::size_t size, std::uint64_t now_ms) {
  if (state_ == State::AwaitConnect) {
    if (!received_before_connect_) received_before_connect_ = std::make_unique<std::string>();
    std::string& raw = *received_before_connect_;
    raw.append(data, size);
    // Not MQTT at all (an HTTP request, a TLS hello): close now instead of waiting for a
    // frame that will never complete [MQTT-3.1.0-1]. A CONNECT with reserved flags set is a
    // Malformed Packet [MQTT-2.1.3-1]: the decoder says so.
    const auto first = static_cast<std::uint8_t>(raw[0]);
    if ((first >> 4) != static_cast<std::uint8_t>(protocol::PacketType::Connect)) {
      protocol_violation(ReasonCode::ProtocolError, "first packet is not CONNECT");
      return;
    }
    // Bytes before CONNECT cost memory before anyone is known: a worker holds a bounded
    // amount of them, past which only small CONNECTs are taken.
    if (!worker_.connecting_bytes().change(0, size) && raw.size() > kSmallConnectBytes) {
      protocol_violation(ReasonCode::ServerBusy, "too many bytes held before CONNECT");
      return;
    }
    // The CONNECT is decoded once it is whole, from these bytes: the decoder keeps no second
    // copy of it meanwhile. What came after it in the same reads follows it.
    if (!frame_complete(raw, decoder_.max_packet_size())) return;
    data = raw.data();
    size = raw.size();
  }
  std::span<const std::uint8_t> input(reinterpret_cast<const std::uint8_t*>(data), size);
  protocol::Packet packet;
  protocol::DecodeError error;
  while (!input.empty() && (state_ == State::AwaitConnect || state_ == State::Connected)) {
    if (held_ || connack_waits_) {
      // Back-pressure, or a CONNACK waiting for the store: the rest waits (bounded by one
      // read) until the hold ends or the CONNACK is out.
      const std::string_view rest(reinterpret_cast<const char*>(input.data()), input.size());
      if (connack_waits_) {
        worker_.stash_until_connack(serial_, rest);
      } else {
        worker_.stash_input(*this, rest);
      }
      return;
    }
    switch (decoder_.next(input, packet, error)) {
      case protocol::DecodeStatus::NeedMore:
        return;
      case protocol::DecodeStatus::Error:
        protocol_violation(error.reason, error.what);
        return;
      case protocol::DecodeStatus::Packet:
        // Before CONNECT, last_packet_ms_ stays the accept time: the CONNECT must be complete
        // within kConnectTimeoutMs of it, however slowly its bytes come (a slowloris).
        if (state_ == State::Connected) last_packet_ms_ = now_ms;
        handle(std::move(packet));
        // A client that does not read what it asks for (PUBACKs, PINGRESPs, SUBACKs) is not
        // read either until that drains: its answers cannot grow without bound.
        if (state_ == State::Connected && pending_bytes() > worker_.engine().limits().max_pending_output_bytes) {
          worker_.hold_reader(*this);
        }
        break;
    }
  }
}

void ClientConnection::on_closed() {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  end_session_link(!normal_disconnect_);
}

void ClientConnection::handle(protocol::Packet&& packet) {
  if (state_ == State::AwaitConnect) {
    if (auto* connect = std::get_if<protocol::Connect>(&packet)) {
      handle_connect(std::move(*connect));
    } else {
      // [MQTT-3.1.0-1] the first packet must be CONNECT.
      protocol_violation(ReasonCode::ProtocolError, "first packet is not CONNECT");
    }
    return;
  }
  std::visit(
      [this](auto&& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, protocol::Publish>) {
          handle_publish(std::move(p));
        } else if constexpr (std::is_same_v<T, protocol::Ack>) {
          handle_ack(p);
        } else if constexpr (std::is_same_v<T, protocol::Subscribe>) {
          handle_subscribe(p);
        } else if constexpr (std::is_same_v<T, protocol::Unsubscribe>) {
          handle_unsubscribe(p);
        } else if constexpr (std::is_same_v<T, protocol::Pingreq>) {
          send(protocol::Pingresp{});
        } else if constexpr (std::is_same_v<T, protocol::Disconnect>) {
          handle_disconnect(p);
        } else if constexpr (std::is_same_v<T, protocol::Auth>) {
          handle_auth(p);
        } else if constexpr (std::is_same_v<T, protocol::Connect>) {
          protocol_violation(ReasonCode::ProtocolError, "second CONNECT");  // [MQTT-3.1.0-2]
        } else {
          protocol_violation(ReasonCode::ProtocolError, "packet a client must not send");
        }
      },
      std::move(packet));
}

void ClientConnection::handle_connect(protocol::Connect&& connect) {
  Engine& engine = worker_.engine();
  const Limits& limits = engine.limits();
  version_ = connect.version;
  const bool v5 = is_v5();
  decoder_.set_max_packet_size(limits.max_packet_size);  // CONNECT alone had the smaller bound

  bool assigned = false;
  std::string client_id = std::move(connect.client_id);
  // MQTT 3.1 ("MQIsdp", level 3) has no empty client id. Its 23-character cap is not applied:
  // units that send longer ids (UUIDs) are common, and max_client_id_length bounds them.
  if (connect.version == protocol::ProtocolVersion::V31 && client_id.empty()) {
    reject_connect(ReasonCode::ClientIdentifierNotValid, "MQTT 3.1 needs a client id");
    return;
  }
  if (client_id.empty()) {
    // [MQTT-3.1.3-8] 3.1.1 allows an empty id only with a clean session.
    if (!v5 && !connect.clean_start) {
      reject_connect(ReasonCode::ClientIdentifierNotValid, "empty client id without clean session");
      return;
    }
    client_id = worker_.assign_client_id();
    assigned = true;
  } else if (client_id.size() > limits.max_client_id_length) {
    reject_connect(ReasonCode::ClientIdentifierNotValid, "client id too long");
    return;
  } else {
    unsigned home = engine.home_worker(client_id);
    if (home != worker_.index()) {
      std::string received = take_connect_bytes();
      if (!link_.hand_over(home, std::move(received))) {
        // Out of file descriptors: the client hears "busy, try again later", not a silent close.
        reject_connect(ReasonCode::ServerBusy, "the connection cannot move to its session's worker");
        return;
      }
      state_ = State::Closed;  // on_bytes, which called us, reads nothing more of these bytes
      return;
    }
  }
  if (connect.properties.authentication_method) {
    // Enhanced authentication needs an authentication hook; none handles this method.
    reject_connect(ReasonCode::BadAuthenticationMethod, "no handler for the authentication method");
    return;
  }
  if (connect.will) {
    const auto& will = *connect.will;
    if (will.qos > limits.max_qos) {
      reject_connect(ReasonCode::QosNotSupported, "will QoS above maximum");
      return;
    }
    if (will.retain && !limits.retain_available) {
      reject_connect(ReasonCode::RetainNotSupported, "will retain not supported");
      return;
    }
    if (protocol::is_reserved_topic(will.topic)) {
      reject_connect(ReasonCode::NotAuthorized, "will topic under $SYS or $share, where clients do not publish");
      return;
    }
    // The rules a PUBLISH meets: a will must not create a topic no client could then publish
    // to (nor delete a retained will from).
    const auto content = publish_content(will.topic, *will.payload, will.properties.payload_format_indicator,
                                         will.properties.response_topic);
    if (auto fault = check_publish_content(content, limits.max_topic_levels)) {
      reject_connect(fault->code, fault->what);
      return;
    }
  }
  // 3.1.1 has no Server Keep Alive to lower a client's: one asking for more than the cap (or
  // for none) is refused, so that the cap holds for every connection. No return code says
  // why, so the connection closes without a CONNACK [MQTT-3.2.2-6].
  if (!v5 && limits.max_keep_alive != 0 &&
      (connect.keep_alive == 0 || connect.keep_alive > limits.max_keep_alive)) {
    reject_connect(ReasonCode::ProtocolError, "keep alive 0 or above limits.max_keep_alive");
    return;
  }
  if (limits.max_connections != 0 &&
      engine.open_connections().load(std::memory_order_relaxed) >= limits.max_connections) {
    reject_connect(ReasonCode::ServerBusy, "connection limit reached");
    return;
  }

  protocol::Connack connack;
  const auto& props = connect.properties;
  if (v5) {
    client_receive_maximum_ = props.receive_maximum.value_or(65535);
    client_max_packet_size_ = props.maximum_packet_size.value_or(0);
    // Each outbound alias keeps its topic for the connection: bounded by our own maximum too,
    // not only by what the client offers (up to 65,535 topics of 64 KiB).
    client_topic_alias_max_ = std::min(props.topic_alias_maximum.value_or(0), limits.topic_alias_maximum);
    request_problem_information_ = props.request_problem_information.value_or(1) == 1;
  }
  keep_alive_ = connect.keep_alive;
  if (limits.max_keep_alive != 0 && (keep_alive_ == 0 || keep_alive_ > limits.max_keep_alive) && v5) {
    keep_alive_ = limits.max_keep_alive;
    connack.properties.server_keep_alive = keep_alive_;
  }
  std::uint32_t expiry;
  if (v5) {
    expiry = props.session_expiry_interval.value_or(0);
    if (expiry > limits.max_session_expiry) {
      expiry = limits.max_session_expiry;
      connack.properties.session_expiry_interval = expiry;
    }
  } else {
    expiry = connect.clean_start ? 0 : limits.persistent_session_expiry;
  }

  if (v5) {
    if (assigned) connack.properties.assigned_client_identifier = client_id;
    if (limits.receive_maximum != 65535) connack.properties.receive_maximum = limits.receive_maximum;
    if (limits.topic_alias_maximum != 0)
      connack.properties.topic_alias_maximum = limits.topic_alias_maximum;
    connack.properties.maximum_packet_size = limits.max_packet_size;
    if (limits.max_qos < 2) connack.properties.maximum_qos = limits.max_qos;
    if (!limits.retain_available) connack.properties.retain_available = 0;
  }
  // [MQTT-3.1.2-24] The properties above are the ones a client needs (it may drop none of them,
  // unlike a reason string): a Maximum Packet Size too small for them leaves closing as the only
  // answer, before a takeover or a session change.
  if (v5 && too_large_for_client(protocol::encoded_size(connack, version_))) {
    if (log::enabled(LogLevel::Debug))
      log::debug("closing {}: its Maximum Packet Size {} is smaller than the CONNACK", link_.peer(),
                 client_max_packet_size_);
    state_ = State::Closing;
    link_.close();
    return;
  }

  // A persistent session's records are keyed by client id, and store keys are bounded: refuse
  // rather than fail every write batch this session would share with others.
  if (expiry != 0 && engine.store() && client_id.size() > kMaxStoredClientIdLength) {
    reject_connect(ReasonCode::ClientIdentifierNotValid, "client id too long for a persistent session");
    return;
  }
  Session* session = worker_.find_session(client_id);
  // A session that ends with its connection (Clean Session 1, expiry 0) is never resumed, not
  // even by a takeover [MQTT-3.1.2-6]; Clean Start ends any old session.
  const bool resume = session && !connect.clean_start && session->expiry_interval != 0;
  if (session && session->connection) {
    // [MQTT-3.1.4-3] takeover: the old connection goes, the session may stay.
    session->connection->take_over(resume);
  }
  // A stored session that Clean Start discards must stay discarded once the client is told
  // so (Session Present 0) [MQTT-3.1.2-4], [MQTT-3.1.2-6]: a crash right after that CONNACK
  // must not bring back its subscriptions and queued messages.
  const bool discards_stored =
      session && !resume && session->subscriber->persistent.load(std::memory_order_relaxed);
  if (session && !resume) {
    // The old session ends: a will still waiting for its delay goes out now.
    if (session->will) worker_.publish_will(session->client_id(), session->will->will);
    session->will.reset();
    worker_.destroy_session(*session);
    session = nullptr;
  }
  // [MQTT-3.2.2-2], [MQTT-3.2.2-3]; MQTT 3.1 has no such flag (the byte is reserved).
  connack.session_present = session != nullptr && version_ != protocol::ProtocolVersion::V31;
  if (!session) session = &worker_.create_session(client_id);
  // [MQTT-3.1.3-9] a reconnect before the will delay ends cancels the old will.
  session->will.reset();
  if (connect.will) session->will = std::make_unique<PendingWill>(PendingWill{std::move(*connect.will), 0});
  session->connection = this;
  session->subscriber->connected.store(true, std::memory_order_relaxed);
  session->version = version_;
  session->expiry_interval = expiry;
  session->expires_at_ms = 0;
  worker_.session_online(*session);
  worker_.persist_session(*session);
  session_ = session;
  state_ = State::Connected;
  last_packet_ms_ = engine.now_ms();  // keep alive runs from here
  counted_ = true;
  Counters::add(engine.open_connections());

  if (discards_stored && engine.durable_acks() && worker_.has_pending_writes()) {
    // Nothing is read or sent until then (a SUBACK, a PINGRESP, a retained message would
    // overtake the CONNACK). A failed commit is retried (WorkerCore::save_unsaved_sessions).
    connack_waits_ = true;
    link_.pause_reading();
    WorkerCore* worker = &worker_;
    worker_.after_commit([worker, self = this, serial = serial_, connack](const Status&) {
      std::string input = worker->take_input_until_connack(serial);
      if (worker->connection_alive(self, serial)) self->finish_connect(connack, std::move(input));
    });
    return;
  }
  finish_connect(connack, {});
}

void ClientConnection::finish_connect(const protocol::Connack& connack, std::string&& input) {
  if (state_ != State::Connected) return;  // closed meanwhile (a takeover, a shutdown)
  const bool waited = std::exchange(connack_waits_, false);
  send(connack);
  worker_.resume_inflight(*session_);
  worker_.pump(*session_);
  if (!input.empty()) on_bytes(input.data(), input.size());
  if (waited && state_ == State::Connected && !held_) link_.resume_reading();
}

void ClientConnection::handle_publish(protocol::Publish&& publish) {
  Engine& engine = worker_.engine();
  const Limits& limits = engine.limits();
  auto& props = publish.properties;

  if (props.topic_alias) {
    std::uint16_t alias = *props.topic_alias;
    if (alias == 0 || alias > limits.topic_alias_maximum) {
      protocol_violation(ReasonCode::TopicAliasInvalid, "topic alias out of range");  // [MQTT-3.3.2-9]
      return;
    }
    if (publish.topic.empty()) {
      const std::string* known = nullptr;
      if (aliases_) {
        auto it = aliases_->inbound.find(alias);
        if (it != aliases_->inbound.end()) known = &it->second;
      }
      if (!known) {
        protocol_violation(ReasonCode::ProtocolError, "unknown topic alias");
        return;
      }
      publish.topic = *known;
    } else {
      aliases().inbound[alias] = publish.topic;
    }
  }
  if (publish.topic.empty()) {
    protocol_violation(ReasonCode::ProtocolError, "empty topic without alias");
    return;
  }
  if (!props.subscription_identifiers.empty()) {
    protocol_violation(ReasonCode::ProtocolError, "subscription identifier from a client");  // [MQTT-3.3.4-6]
    return;
  }
  if (publish.qos > limits.max_qos) {
    protocol_violation(ReasonCode::QosNotSupported, "QoS above maximum");  // [MQTT-3.3.1-4]
    return;
  }
  if (publish.retain && !limits.retain_available) {
    protocol_violation(ReasonCode::RetainNotSupported, "retain not supported");
    return;
  }
  // 5.0 counts QoS 1 and QoS 2 alike [MQTT-3.3.4-9]. 3.1.1 has no Receive Maximum: a client
  // may have every packet id waiting for its PUBREL [MQTT-4.3.3-2], so the id space (65,535)
  // bounds its QoS 2 state.
  if (is_v5() && publish.qos != 0 &&
      !(publish.qos == 2 && session_->inbound_qos2.contains(publish.packet_id)) &&
      unacknowledged_publishes() >= limits.receive_maximum) {
    protocol_violation(ReasonCode::ReceiveMaximumExceeded, "receive maximum exceeded");
    return;
  }
  const PacketType ack_type = publish.qos == 1 ? PacketType::Puback : PacketType::Pubrec;
  const auto content =
      publish_content(publish.topic, *publish.payload, props.payload_format_indicator, props.response_topic);
  if (auto fault = check_publish_content(content, limits.max_topic_levels)) {
    if (fault->code == ReasonCode::PayloadFormatInvalid && publish.qos != 0) {
      queue_ack(ack_type, publish.packet_id, fault->code);
    } else {
      protocol_violation(fault->code, fault->what);
    }
    return;
  }
  Counters::add(worker_.counters().messages_received);
  if (publish.qos == 2 && session_->inbound_qos2.contains(publish.packet_id)) {
    // A resent QoS 2 PUBLISH whose PUBREC was lost: acknowledge, do not route again.
    queue_ack(PacketType::Pubrec, publish.packet_id, ReasonCode::Success);
    return;
  }
  if (protocol::is_reserved_topic(publish.topic)) {
    // $SYS is the broker's and $share no subscriber can match: clients may not exchange
    // messages there (MQTT 5.0 section 4.7.2). A 5.0 client hears Not authorized; 3.1.1 has no
    // code for it, so its message is acknowledged and dropped, as Mosquitto does, rather than
    // resent forever.
    if (log::enabled(LogLevel::Debug))
      log::debug("{} published to {}: dropped", session_->client_id(), publish.topic);
    if (publish.qos != 0)
      queue_ack(ack_type, publish.packet_id, is_v5() ? ReasonCode::NotAuthorized : ReasonCode::Success);
    return;
  }

  // Copied, not moved: the packet keeps its topic string's capacity for the next PUBLISH
  // decoded from the same read.
  MessageRef message = engine.new_message(publish.topic, session_->client_id());
  message->arrival_ms = worker_.engine().now_ms();
  if (props.message_expiry_interval)
    message->expires_at_ms = expiry_deadline(message->arrival_ms, *props.message_expiry_interval);
  message->payload = std::move(publish.payload);
  message->qos = publish.qos;
  message->retain = publish.retain;
  if (is_v5()) message->set_properties(std::move(props));
  if (publish.retain && publish.qos != 0 && is_v5() && limits.retain_available &&
      engine.retained().refuses(*message, engine.now_ms())) {
    // max_retained_messages reached and the topic is new, or max_retained_bytes would be
    // passed. Told before the message goes anywhere, the platform knows it was not kept for
    // vehicles that connect later and can send it again once there is room, without a second copy to those online now. 3.1.1 (no
    // failure code) and QoS 0 (no acknowledgement) are forwarded, not retained, and logged.
    queue_ack(ack_type, publish.packet_id, ReasonCode::QuotaExceeded);
    return;
  }
  auto [receivers, ack_after_commit, routed] = worker_.publish(std::move(message), session_);
  if (worker_.publisher_blocked()) worker_.hold_publisher(*this);

  if (publish.qos == 0) return;
  ReasonCode reason = receivers == 0 ? ReasonCode::NoMatchingSubscribers : ReasonCode::Success;
  if (publish.qos == 2) {
    session_->inbound_qos2.insert(publish.packet_id);
    worker_.persist_session(*session_);
  }
  queue_ack(ack_type, publish.packet_id, reason, ack_after_commit, std::move(routed));
}

std::size_t ClientConnection::unacknowledged_publishes() const {
  std::size_t count = session_->inbound_qos2.size();  // PUBREC'd or about to be
  for (std::size_t i = acks_sent_; i < pending_acks_.size(); ++i)
    count += pending_acks_[i].type == PacketType::Puback ? 1 : 0;
  return count;
}

void ClientConnection::queue_ack(PacketType type, std::uint16_t packet_id, ReasonCode reason,
                                 bool after_commit, MessagePtr message) {
  const bool wait = after_commit && worker_.engine().store() && worker_.has_pending_writes();
  if (!wait && acks_sent_ == pending_acks_.size()) {
    send_ack(type, packet_id, reason);
    return;
  }
  // Acknowledgements leave in the order the PUBLISH packets came [MQTT-4.6.0-2], so one that
  // needs no commit still waits behind one that does.
  pending_acks_.push_back(PendingAck{type, packet_id, reason, !wait, wait ? std::move(message) : MessagePtr{}});
  if (!wait) return;
  WorkerCore* worker = &worker_;
  std::uint64_t serial = serial_;
  worker_.after_commit([worker, self = this, serial](const Status& status) {
    if (worker->connection_alive(self, serial)) self->durable_ack_done(status);
  });
}

void ClientConnection::durable_ack_done(const Status& status) {
  for (std::size_t i = acks_sent_; i < pending_acks_.size(); ++i) {
    PendingAck& ack = pending_acks_[i];
    if (ack.ready) continue;
    ack.ready = true;
    if (!status.is_ok()) {
      // Nothing is acknowledged that was not stored: a 5.0 client hears why, a 3.1.1 client
      // (which has no failure code) is disconnected and will resend. What was routed of it and
      // not yet sent is dropped, so the resend is the only copy a queued session gets.
      if (ack.message) ack.message->refused.store(true, std::memory_order_relaxed);
      if (ack.type == PacketType::Pubrec && session_) session_->inbound_qos2.erase(ack.packet_id);
      if (!is_v5()) {
        disconnect(ReasonCode::UnspecifiedError, "store write failed");
        return;
      }
      ack.reason = status.code() == Status::Code::Unavailable ? ReasonCode::QuotaExceeded
                                                              : ReasonCode::UnspecifiedError;
    }
    break;
  }
  const auto drop_sent = [this] {
    pending_acks_.erase(pending_acks_.begin(), pending_acks_.begin() + acks_sent_);
    acks_sent_ = 0;
  };
  while (acks_sent_ < pending_acks_.size() && pending_acks_[acks_sent_].ready) {
    PendingAck& ack = pending_acks_[acks_sent_];
    ack.message.reset();
    send_ack(ack.type, ack.packet_id, ack.reason);
    acks_sent_ = static_cast<std::uint16_t>(acks_sent_ + 1);
    if (acks_sent_ == UINT16_MAX) drop_sent();  // the index's width
  }
  if (acks_sent_ >= pending_acks_.size() / 2) drop_sent();  // all sent included
}

void ClientConnection::handle_ack(const protocol::Ack& ack) {
  Session& session = *session_;
  auto it = session.inflight.find(ack.packet_id);
  using S = InflightMessage::State;
  // An acknowledgement that does not fit the state of the message in flight under its packet id
  // (a PUBACK for QoS 2, a PUBCOMP before the PUBREC) is a protocol violation: the client mixed
  // up its flows. One for an id not in flight is not: it can be a late duplicate.
  if (it != session.inflight.end() && ack.type != PacketType::Pubrel) {
    const S state = it->second.state;
    const bool fits = ack.type == PacketType::Puback   ? state == S::AwaitPuback
                      : ack.type == PacketType::Pubrec ? state != S::AwaitPuback
                                                       : state == S::AwaitPubcomp;
    if (!fits) {
      protocol_violation(ReasonCode::ProtocolError, "acknowledgement out of its QoS flow");
      return;
    }
  }
  switch (ack.type) {
    case PacketType::Puback:
      if (it != session.inflight.end()) {
        worker_.unpersist_delivery(session, it->second.delivery);
        session.inflight.erase(it);
        worker_.pump(session);
      }
      return;
    case PacketType::Pubrec:
      if (it == session.inflight.end()) {
        send_ack(PacketType::Pubrel, ack.packet_id, ReasonCode::PacketIdentifierNotFound);
        return;
      }
      if (is_failure(ack.reason)) {  // the receiver refused it: the flow ends here
        worker_.unpersist_delivery(session, it->second.delivery);
        session.inflight.erase(it);
        worker_.pump(session);
        return;
      }
      it->second.state = S::AwaitPubcomp;
      worker_.persist_delivery(session, it->second.delivery, DeliveryState::AwaitPubcomp, ack.packet_id);
      worker_.send_inflight_when_durable(session, ack.packet_id);
      return;
    case PacketType::Pubcomp:
      if (it != session.inflight.end()) {
        worker_.unpersist_delivery(session, it->second.delivery);
        session.inflight.erase(it);
        worker_.pump(session);
      }
      return;
    case PacketType::Pubrel: {
      bool known = session.inbound_qos2.erase(ack.packet_id) > 0;
      if (known) worker_.persist_session(session);
      // After the commit: a PUBCOMP for an id the broker could still hold after a crash would
      // make it drop the client's next message with that id as a duplicate.
      queue_ack(PacketType::Pubcomp, ack.packet_id,
                known ? ReasonCode::Success : ReasonCode::PacketIdentifierNotFound,
                worker_.engine().durable_acks());
      return;
    }
    default:
      protocol_violation(ReasonCode::ProtocolError, "unexpected acknowledgement");
  }
}

void ClientConnection::handle_subscribe(const protocol::Subscribe& subscribe) {
  Engine& engine = worker_.engine();
  const Limits& limits = engine.limits();
  Session& session = *session_;
  const bool v5 = is_v5();
  std::uint32_t subscription_id = subscribe.properties.subscription_identifiers.empty()
                                      ? 0
                                      : subscribe.properties.subscription_identifiers.front();
  protocol::Suback suback;
  suback.packet_id = subscribe.packet_id;
  struct RetainedWork {
    std::string filter;
    SubscriptionOptions options;
  };
  std::vector<RetainedWork> retained_work;

  // A filter refused: its reason code, or 0x80 before 5.0. MQTT 3.1 has no failure code (0x80
  // came with 3.1.1), so a 3.1 client is closed instead; false then.
  const auto refuse = [&](ReasonCode v5_reason, const char* why) {
    if (version_ == protocol::ProtocolVersion::V31) {
      protocol_violation(ReasonCode::UnspecifiedError, why);
      return false;
    }
    suback.reasons.push_back(v5 ? v5_reason : ReasonCode::UnspecifiedError);
    return true;
  };
  for (const auto& entry : subscribe.entries) {
    const bool shared = protocol::is_shared_filter(entry.filter);
    if (!protocol::valid_topic_filter(entry.filter)) {
      if (!refuse(ReasonCode::TopicFilterInvalid, "invalid topic filter")) return;
      continue;
    }
    if (protocol::topic_levels(entry.filter) > limits.max_topic_levels) {
      if (!refuse(ReasonCode::TopicFilterInvalid, "topic filter deeper than limits.max_topic_levels")) return;
      continue;
    }
    if (shared && entry.no_local && v5) {
      protocol_violation(ReasonCode::ProtocolError, "No Local on a shared subscription");  // [MQTT-3.8.3-4]
      return;
    }
    bool exists = session.subscriptions.contains(entry.filter);
    if (!exists && session.subscriptions.size() >= limits.max_subscriptions_per_session) {
      if (!refuse(ReasonCode::QuotaExceeded, "too many subscriptions")) return;
      continue;
    }
    if (!exists && session.subscriptions.filter_bytes() + entry.filter.size() >
                       limits.max_subscription_bytes_per_session) {
      if (!refuse(ReasonCode::QuotaExceeded, "too many bytes of topic filters")) return;
      continue;
    }
    SubscriptionOptions options;
    options.qos = std::min(entry.qos, limits.max_qos);
    options.no_local = entry.no_local;
    options.retain_as_published = entry.retain_as_published;
    options.retain_handling = entry.retain_handling;
    options.subscription_id = subscription_id;
    engine.index().subscribe(session.subscriber, entry.filter, options);
    session.subscriptions[entry.filter] = options;
    suback.reasons.push_back(static_cast<ReasonCode>(options.qos));
    // [MQTT-3.3.1-9..11] retain handling; shared subscriptions get no retained messages.
    if (!shared && limits.retain_available &&
        (options.retain_handling == 0 || (options.retain_handling == 1 && !exists))) {
      retained_work.push_back({entry.filter, options});
    }
  }
  worker_.persist_session(session);
  // Retained messages are queued now even when the SUBACK waits for the store: PUBLISH
  // packets may come before the SUBACK [MQTT-3.8.4], and queueing them later would let live
  // messages routed meanwhile pass older retained ones.
  if (send_after_session_commit(std::move(suback))) return;  // too large for the client: closed
  for (const auto& work : retained_work) worker_.queue_retained(*session_, work.filter, work.options);
}

bool ClientConnection::send_after_session_commit(protocol::Packet&& packet) {
  const bool wait = session_ && session_->subscriber->persistent.load(std::memory_order_relaxed) &&
                    worker_.engine().durable_acks() && worker_.has_pending_writes();
  if (!wait) {
    send(packet);
    return state_ != State::Connected;
  }
  WorkerCore* worker = &worker_;
  worker_.after_commit([worker, self = this, serial = serial_, p = std::move(packet)](const Status&) {
    // A failed commit is retried (WorkerCore::save_unsaved_sessions); the subscription holds.
    if (worker->connection_alive(self, serial)) self->send(p);
  });
  return false;
}

void ClientConnection::handle_unsubscribe(const protocol::Unsubscribe& unsubscribe) {
  Session& session = *session_;
  const bool v5 = is_v5();
  // A filter that breaks 4.7 [MQTT-4.7.1-1..3], [MQTT-4.7.3-1]: 3.1.1 has no UNSUBACK code for
  // it, so the connection closes [MQTT-4.8.0-1]; 5.0 answers 0x8F for that filter.
  if (!v5 && !std::all_of(unsubscribe.filters.begin(), unsubscribe.filters.end(),
                           [](const std::string& f) { return protocol::valid_topic_filter(f); })) {
    protocol_violation(ReasonCode::TopicFilterInvalid, "invalid topic filter in UNSUBSCRIBE");
    return;
  }
  protocol::Unsuback unsuback;
  unsuback.packet_id = unsubscribe.packet_id;
  for (const auto& filter : unsubscribe.filters) {
    if (!protocol::valid_topic_filter(filter)) {
      unsuback.reasons.push_back(ReasonCode::TopicFilterInvalid);
      continue;
    }
    auto it = session.subscriptions.find(filter);
    if (it == session.subscriptions.end()) {
      unsuback.reasons.push_back(ReasonCode::NoSubscriptionExisted);
      continue;
    }
    worker_.engine().index().unsubscribe(session.subscriber->key, filter);
    session.subscriptions.erase(it);
    worker_.unsubscribed(session, filter);
    unsuback.reasons.push_back(ReasonCode::Success);
  }
  worker_.persist_session(session);
  send_after_session_commit(std::move(unsuback));
}

void ClientConnection::handle_disconnect(const protocol::Disconnect& disconnect) {
  Session& session = *session_;
  if (auto expiry = disconnect.properties.session_expiry_interval) {
    if (session.expiry_interval == 0 && *expiry != 0) {
      protocol_violation(ReasonCode::ProtocolError, "session expiry set after 0");  // [MQTT-3.14.2-2]
      return;
    }
    session.expiry_interval = std::min(*expiry, worker_.engine().limits().max_session_expiry);
  }
  // [MQTT-3.14.4-3] only a normal DISCONNECT (0x00) deletes the will; with any other reason
  // (0x04 asks for it, an error code reports a failure) it is published [MQTT-3.1.2-8].
  normal_disconnect_ = disconnect.reason == ReasonCode::Success;
  state_ = State::Closing;
  end_session_link(!normal_disconnect_);
  link_.close();
}

void ClientConnection::handle_auth(const protocol::Auth&) {
  // No authentication method was agreed at CONNECT (we reject those for now), so an AUTH
  // packet is a protocol error [MQTT-4.12.0-?].
  protocol_violation(ReasonCode::ProtocolError, "AUTH without an authentication method");
}

void ClientConnection::take_over(bool session_continues) {
  Session* session = session_;
  if (is_v5() && !connack_waits_) {  // no DISCONNECT before a CONNACK [MQTT-3.14.0-1]
    protocol::Disconnect d;
    d.reason = ReasonCode::SessionTakenOver;
    send(d);
  }
  state_ = State::Closing;
  if (session) {
    session->connection = nullptr;
    session_ = nullptr;
    if (session->will) {
      // The old connection ended abnormally: its will goes out now unless it has a delay
      // and the session goes on (the new connection cancels it).
      bool delayed = session->will->will.properties.will_delay_interval.value_or(0) > 0;
      if (!session_continues || !delayed) worker_.publish_will(session->client_id(), session->will->will);
      session->will.reset();
    }
  }
  link_.close();
}

void ClientConnection::disconnect(ReasonCode reason, const char* why) {
  if (state_ != State::Connected) {
    state_ = State::Closing;
    link_.close();
    return;
  }
  if (log::enabled(LogLevel::Debug))  // peer() asks the kernel
    log::debug("closing {} ({}): {}", link_.peer(), session_ ? session_->client_id() : "", why);
  if (is_v5() && !connack_waits_) {  // no DISCONNECT before a CONNACK [MQTT-3.14.0-1]
    protocol::Disconnect d;
    d.reason = reason;
    if (request_problem_information_ && why && *why) d.properties.reason_string = why;
    std::string bytes;
    // [MQTT-3.14.2-3] no reason string that would take the packet past the client's limit.
    if (protocol::encode(d, version_, bytes) && too_large_for_client(bytes.size())) {
      d.properties.reason_string.reset();
      bytes.clear();
      (void)protocol::encode(d, version_, bytes);
    }
    link_.write(bytes);
  }
  state_ = State::Closing;
  end_session_link(true);
  link_.close();
}

void ClientConnection::end_session_link(bool publish_will) {
  Session* session = session_;
  if (!session) return;
  session_ = nullptr;
  session->connection = nullptr;
  worker_.session_offline(*session, publish_will);
}

void ClientConnection::reject_connect(ReasonCode reason, const char* why) {
  if (log::enabled(LogLevel::Debug)) log::debug("rejecting CONNECT from {}: {}", link_.peer(), why);
  worker_.note_refused_connect(link_.peer(), why);
  if (is_v5()) {
    protocol::Connack connack;
    connack.reason = reason;
    send(connack);
  } else if (v3_return_code_applies(reason)) {
    protocol::Connack connack;
    connack.reason = reason;
    send(connack);
  }
  state_ = State::Closing;
  link_.close();
}

void ClientConnection::protocol_violation(ReasonCode reason, const char* why) {
  Counters::add(worker_.counters().protocol_errors);
  if (log::enabled(LogLevel::Debug))
    log::debug("protocol error from {}: {} ({})", link_.peer(), why, reason_name(reason));
  if (state_ == State::AwaitConnect) {
    std::uint8_t level =
        received_before_connect_ ? peek_protocol_level(*received_before_connect_) : 0;
    if (reason == ReasonCode::UnsupportedProtocolVersion && level != 5) {
      // [MQTT-3.1.2-2] 3.1.1-style CONNACK 0x01 for a level we do not speak.
      link_.write(std::string("\x20\x02\x00\x01", 4));
      state_ = State::Closing;
      link_.close();
      return;
    }
    if (level == 5) {
      version_ = ProtocolVersion::V5;
      reject_connect(reason, why);
      return;
    }
    state_ = State::Closing;
    link_.close();
    return;
  }
  disconnect(reason, why);
}

void ClientConnection::send(const protocol::Packet& packet) {
  std::string bytes;
  if (!protocol::encode(packet, version_, bytes)) {
    log::warn("cannot encode a packet for {}", link_.peer());
    return;
  }
  // [MQTT-3.1.2-24] nothing larger than the client takes: an answer it cannot have (a SUBACK
  // for many filters under a small limit) ends the connection instead, and with it the
  // session's link. Only SUBACK and UNSUBACK can grow past a limit the CONNACK fitted in.
  if (too_large_for_client(bytes.size())) {
    disconnect(ReasonCode::PacketTooLarge, "answer larger than the client's Maximum Packet Size");
    return;
  }
  link_.write(bytes);
}

void ClientConnection::send_ack(PacketType type, std::uint16_t packet_id, ReasonCode reason) {
  protocol::Ack ack;
  ack.type = type;
  ack.packet_id = packet_id;
  ack.reason = reason;
  send(ack);
}

void ClientConnection::send_pubrel(std::uint16_t packet_id) {
  send_ack(PacketType::Pubrel, packet_id, ReasonCode::Success);
}

ClientConnection::TopicAliases& ClientConnection::aliases() {
  if (!aliases_) aliases_ = std::make_unique<TopicAliases>();
  return *aliases_;
}

std::uint16_t ClientConnection::outbound_alias(std::string_view topic, bool& first_use) {
  first_use = false;
  if (client_topic_alias_max_ == 0 || topic.size() > kMaxAliasedTopicLength) return 0;
  auto& outbound = aliases().outbound;
  auto it = outbound.find(topic);
  if (it != outbound.end()) return it->second;
  if (outbound.size() >= client_topic_alias_max_) return 0;
  auto alias = static_cast<std::uint16_t>(outbound.size() + 1);
  outbound.emplace(std::string(topic), alias);
  first_use = true;
  return alias;
}

bool ClientConnection::send_publish(const Delivery& delivery, std::uint16_t packet_id, bool dup) {
  const Message& message = *delivery.message;
  std::string& head = worker_.scratch();
  head.clear();
  if (!is_v5() || (message.properties == nullptr && message.expires_at_ms == 0 &&
                   delivery.subscription_ids.empty() && client_topic_alias_max_ == 0)) {
    // The common case, per receiver: the header straight from the message (no Publish, no
    // topic copy, no allocation).
    protocol::PublishHeader header{message.topic(), delivery.qos, delivery.retain, dup, packet_id,
                                   nullptr, message.payload->size()};
    return protocol::encode_publish_head(header, version_, head) && write_publish(head, message.payload);
  }
  protocol::Publish publish;
  publish.payload = message.payload;
  publish.qos = delivery.qos;
  publish.retain = delivery.retain;
  publish.dup = dup;
  publish.packet_id = packet_id;
  if (message.properties) publish.properties = *message.properties;
  if (message.expires_at_ms != 0)
    publish.properties.message_expiry_interval = remaining_expiry_seconds(message, worker_.engine().now_ms());
  publish.properties.subscription_identifiers = delivery.subscription_ids;
  bool first_use = false;
  const std::uint16_t alias = outbound_alias(message.topic(), first_use);
  if (alias != 0) publish.properties.topic_alias = alias;
  // A QoS 2 message always names its topic too: MQTT.js 5.x keeps it as received until
  // PUBREL and then hands it out unresolved, with an empty topic.
  if (alias == 0 || first_use || delivery.qos == 2) publish.topic = message.topic();
  // An alias set up for this PUBLISH that does not go out is not the client's to know.
  auto forget_new_alias = [&] {
    if (std::exchange(first_use, false)) aliases_->outbound.erase(aliases_->outbound.find(message.topic()));
  };
  if (!protocol::encode_publish_head(publish, version_, head)) return false;
  if (alias != 0 && !publish.topic.empty() && too_large_for_client(head.size() + message.payload->size())) {
    // Next to the topic, the alias only adds bytes: a message that fits the client's Maximum
    // Packet Size without it goes without it rather than not at all [MQTT-3.1.2-25].
    forget_new_alias();
    publish.properties.topic_alias.reset();
    head.clear();
    if (!protocol::encode_publish_head(publish, version_, head)) return false;
  }
  if (write_publish(head, message.payload)) return true;
  forget_new_alias();
  return false;
}

bool ClientConnection::write_publish(std::string_view head, const protocol::PayloadPtr& payload) {
  // [MQTT-3.1.2-25] never send a packet larger than the client's Maximum Packet Size.
  if (too_large_for_client(head.size() + payload->size())) {
    Counters::add(worker_.counters().messages_dropped);
    return false;
  }
  link_.write(head, payload);
  Counters::add(worker_.counters().messages_sent);
  return true;
}

void ClientConnection::hold(bool for_output) {
  held_ = true;
  held_for_output_ = held_for_output_ || for_output;
  link_.pause_reading();
}

void ClientConnection::alive_while_held(std::uint64_t now_ms, bool output_drained) {
  last_packet_ms_ = now_ms;
  if (output_drained) held_for_output_ = false;
}

void ClientConnection::release(std::string&& input) {
  held_ = false;
  held_for_output_ = false;
  last_packet_ms_ = worker_.engine().now_ms();  // keep alive restarts: it was not read
  if (!input.empty()) on_bytes(input.data(), input.size());
  // Handling the held bytes may have held it again (or closed it).
  if (!held_) link_.resume_reading();
}

void ClientConnection::tick(std::uint64_t now_ms) {
  if (state_ == State::AwaitConnect) {
    if (now_ms - last_packet_ms_ > kConnectTimeoutMs) {
      state_ = State::Closing;
      link_.close();
    }
    return;
  }
  // A held publisher may well have sent its PINGREQ: it waits unread in the kernel. A client
  // held because it reads nothing of its own output is let go when that drains, and a reader
  // gets there within its keep alive: one that does not is closed as usual.
  if (state_ != State::Connected || (held_ && !held_for_output_) || now_ms <= last_packet_ms_) return;
  if (keep_alive_ == 0) {
    if (decoder_.unfinished_bytes() > 0 && now_ms - last_packet_ms_ > kStalledPacketMs)
      disconnect(ReasonCode::KeepAliveTimeout, "unfinished packet stalled (no keep alive)");
    return;
  }
  // [MQTT-3.1.2-24] one and a half times the keep alive without a packet: close.
  if (now_ms - last_packet_ms_ > std::uint64_t{keep_alive_} * 1500) {
    disconnect(ReasonCode::KeepAliveTimeout, "keep alive timeout");
  }
}

}  // namespace broker::core
