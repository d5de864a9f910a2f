#pragma once
// ClientConnection: one network connection's MQTT state machine on the broker side. Bytes come
// in through on_bytes(); packets are decoded, checked against the rules a server enforces, and
// applied to the session; answers go out through the Link.
//
// Life: Accepted -> (CONNECT read; maybe handed over to the client id's home worker) ->
// Connected (bound to a Session) -> Closing (a DISCONNECT sent or the link closed) -> closed.
//
// Thread safety: owned by the transport, touched by its worker only.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/status.hpp"
#include "core/link.hpp"
#include "core/session.hpp"
#include "protocol/decoder.hpp"

namespace broker::core {

class WorkerCore;

class ClientConnection final : public ConnectionHandler {
 public:
  ClientConnection(WorkerCore& worker, Link& link);
  ~ClientConnection() override;

  void on_bytes(const char* data, std::size_t size) override;
  void on_closed() override;

  // Sends one PUBLISH for `delivery` with `packet_id` (0 for QoS 0). Returns false when the
  // client's Maximum Packet Size forbids it (the message is then dropped, as the spec says).
  bool send_publish(const Delivery& delivery, std::uint16_t packet_id, bool dup);
  void send_pubrel(std::uint16_t packet_id);
  // Server-initiated end: DISCONNECT with `reason` to 5.0 clients, then close. The will is
  // published unless `reason` says otherwise (handled by the caller through the session).
  void disconnect(ReasonCode reason, const char* why);

  // Called periodically: keep alive.
  void tick(std::uint64_t now_ms);

  Session* session() noexcept { return session_; }
  // Unique per worker for the life of the process: tells a late store completion whether
  // this is still the connection it was meant for.
  std::uint64_t serial() const noexcept { return serial_; }
  // Publisher back-pressure (WorkerCore::route): the congestion epoch before its last PUBLISH
  // that reached a receiver which was Open.
  std::uint32_t last_open_epoch() const noexcept { return last_open_epoch_; }
  void set_last_open_epoch(std::uint32_t epoch) noexcept { last_open_epoch_ = epoch; }
  // The store committed (or failed) the writes of the oldest acknowledgement waiting for it.
  void durable_ack_done(const Status& status);
  protocol::ProtocolVersion version() const noexcept { return version_; }
  bool is_v5() const noexcept { return version_ == protocol::ProtocolVersion::V5; }
  bool connected() const noexcept { return state_ == State::Connected; }
  // The client's Receive Maximum (65,535 when it set none).
  std::uint16_t receive_maximum() const noexcept { return client_receive_maximum_; }
  // Link::pending_bytes, for back-pressure on QoS 0.
  // Output owed to the client: written and unsent, and acknowledgements waiting for a commit
  // (4 bytes each on the wire), which a flood of QoS 1 from a client that does not read would
  // otherwise pile up without holding it.
  std::size_t pending_bytes() const { return link_.pending_bytes() + (pending_acks_.size() - acks_sent_) * 4; }
  std::size_t unsent_in_kernel() const { return link_.unsent_in_kernel(); }
  std::size_t unread_in_kernel() const { return link_.unread_in_kernel(); }
  // Publisher back-pressure (WorkerCore holds and releases): stop reading the client; go on,
  // first handling `input`, the bytes read before the hold and not handled yet.
  // `for_output`: held because it does not read its own answers (WorkerCore::hold_reader);
  // keep alive still runs then, as it takes nothing from the client.
  void hold(bool for_output = false);
  void release(std::string&& input);
  // Held for its output, it showed life: it took some output, or sent bytes that wait unread.
  // Keep alive counts from `now_ms`. `output_drained`: it took enough that it is held, if at
  // all, as a publisher only.
  void alive_while_held(std::uint64_t now_ms, bool output_drained);
  // Another connection with the same client id arrived [MQTT-3.1.4-3]: DISCONNECT 0x8E to a
  // 5.0 client, then close. The will goes out unless it is delayed and the session goes on.
  void take_over(bool session_continues);

 private:
  enum class State : std::uint8_t { AwaitConnect, Connected, Closing, Closed };

  // on_bytes without the accounting of what is held meanwhile.
  void handle_bytes(const char* data, std::size_t size, std::uint64_t now_ms);
  void handle(protocol::Packet&& packet);
  void handle_connect(protocol::Connect&& connect);
  void handle_publish(protocol::Publish&& publish);
  void handle_ack(const protocol::Ack& ack);
  void handle_subscribe(const protocol::Subscribe& subscribe);
  void handle_unsubscribe(const protocol::Unsubscribe& unsubscribe);
  void handle_disconnect(const protocol::Disconnect& disconnect);
  void handle_auth(const protocol::Auth& auth);
  void reject_connect(ReasonCode reason, const char* why);
  // The rest of a CONNECT once the CONNACK may go: sends it, starts the session's output and
  // handles `input`, what the client sent after the CONNECT meanwhile.
  void finish_connect(const protocol::Connack& connack, std::string&& input);
  void protocol_violation(ReasonCode reason, const char* why);
  void send(const protocol::Packet& packet);
  void send_ack(protocol::PacketType type, std::uint16_t packet_id, ReasonCode reason);
  // A SUBACK or UNSUBACK: now, or under Durability::Durable for a persistent session once the
  // store committed its record, as a PUBACK waits for its message: a subscription the client
  // was told of survives a crash (a 5.0 client told session_present does not subscribe
  // again). Returns true when sending it now closed the connection (too large for the client).
  bool send_after_session_commit(protocol::Packet&& packet);
  // PUBACK/PUBREC now, or once the store committed the publish's writes: `after_commit` when
  // the message is Durable or goes to the message log (WorkerCore::Published). Either way it
  // leaves after every acknowledgement queued before it.
  // `message`: the PUBLISH's message, marked refused if the commit fails.
  void queue_ack(protocol::PacketType type, std::uint16_t packet_id, ReasonCode reason, bool after_commit = false,
                 MessagePtr message = {});
  // QoS 1 and 2 PUBLISH packets from the client not yet answered by PUBACK or PUBCOMP: what
  // the Receive Maximum it was given bounds [MQTT-3.3.4-9].
  std::size_t unacknowledged_publishes() const;
  // The bytes read before CONNECT, taken out of the connection and of the worker's budget.
  std::string take_connect_bytes();
  void end_session_link(bool publish_will);
  // Outbound topic alias for `topic`: 0 = none; sets `first_use` when the topic must go too.
  std::uint16_t outbound_alias(std::string_view topic, bool& first_use);
  // Writes a PUBLISH whose encoded head is `head`; false (counted as dropped) when it exceeds
  // the client's Maximum Packet Size.
  bool write_publish(std::string_view head, const protocol::PayloadPtr& payload);
  // Past the Maximum Packet Size the client set, if it set one [MQTT-3.1.2-24].
  bool too_large_for_client(std::size_t packet_bytes) const noexcept {
    return client_max_packet_size_ != 0 && packet_bytes > client_max_packet_size_;
  }

  // Members are ordered so the small ones pack together: one per connection.
  WorkerCore& worker_;
  Link& link_;
  protocol::Decoder decoder_;
  const std::uint64_t serial_;
  Session* session_ = nullptr;
  // Every byte until CONNECT is handled (for hand-over); null once connected.
  std::unique_ptr<std::string> received_before_connect_;
  std::uint64_t last_packet_ms_ = 0;

  // Negotiated at CONNECT.
  std::uint32_t client_max_packet_size_ = 0;  // 0 = protocol maximum
  std::uint32_t last_open_epoch_ = 0;
  std::uint16_t keep_alive_ = 0;
  std::uint16_t client_receive_maximum_ = 65535;
  std::uint16_t client_topic_alias_max_ = 0;
  // pending_acks_ before this index are sent; dropped in bulk, so that a flood of acks
  // completing one by one costs no more than their number. 16 bits fit in padding.
  std::uint16_t acks_sent_ = 0;
  bool request_problem_information_ = true;
  bool normal_disconnect_ = false;  // DISCONNECT 0x00 received: no will
  bool held_ = false;               // not read: a receiver of its messages is congested
  bool held_for_output_ = false;    // not read: it does not read its own answers
  // Not read, and nothing sent: its CONNACK waits for the store to commit the session it
  // discarded (handle_connect).
  bool connack_waits_ = false;

  State state_ = State::AwaitConnect;
  protocol::ProtocolVersion version_ = protocol::ProtocolVersion::V311;
  bool counted_ = false;  // counted in open_connections

  struct PendingAck {
    protocol::PacketType type;
    std::uint16_t packet_id;
    ReasonCode reason;
    bool ready;
    MessagePtr message;  // while waiting for its commit
  };
  // Waiting for a commit, in PUBLISH order, from acks_sent_ on; a vector, as it is short and
  // usually empty (an empty std::deque costs ~600 bytes per connection).
  std::vector<PendingAck> pending_acks_;

  // Made on first use: most clients (vehicles among them) use no topic alias, and the two
  // empty maps would cost ~110 bytes per connection.
  struct TopicHash {
    using is_transparent = void;  // looked up by a message's string_view topic
    std::size_t operator()(std::string_view topic) const noexcept { return std::hash<std::string_view>{}(topic); }
  };
  struct TopicAliases {
    std::unordered_map<std::uint16_t, std::string> inbound;
    std::unordered_map<std::string, std::uint16_t, TopicHash, std::equal_to<>> outbound;
  };
  TopicAliases& aliases();
  std::unique_ptr<TopicAliases> aliases_;
};

}  // namespace broker::core
