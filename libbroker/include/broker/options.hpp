#pragma once
// broker::Options: everything an embedder or brokerd's config file can set. Every field states
// its default and why; brokerd.example.json mirrors this file.
//
// Thread safety: plain value; copied into the Broker at create().
#include <cstdint>
#include <string>
#include <vector>

namespace broker {

enum class LogLevel : std::uint8_t { Trace, Debug, Info, Warn, Error, Off };

// What a full per-session queue does with one more message. Under either, QoS 0 gives way
// first: queued QoS 0 messages go before any QoS 1/2 one does, and a QoS 0 message finds no
// room in a queue that holds only QoS 1/2 messages.
enum class QueueOverflow : std::uint8_t {
  DropOldest,   // keep the newest data (a vehicle wants the latest config, not the first)
  RefuseNewest, // keep what is queued; the new message is dropped
};

class Store;

// When a QoS 1/2 message that must survive a restart is acknowledged to its publisher.
enum class Durability : std::uint8_t {
  Durable,  // after the Store committed it to disk (fsync): survives a power loss
  Async,    // at once; the Store writes it soon after (survives a process crash, usually)
  Memory,   // nothing is written; sessions live as long as the process
};

struct ListenerOptions {
  std::string host = "0.0.0.0";  // Default: all IPv4 interfaces.
  std::uint16_t port = 1883;     // Default: 1883 (IANA MQTT). 0 picks a free port.
};

struct Limits {
  // Largest packet accepted from a client and sent to one (fixed header included).
  // Default: 16 MiB: room for file and configuration pushes without letting one client pin
  // hundreds of MB. The protocol maximum is 268,435,460 bytes.
  std::uint32_t max_packet_size = 16u * 1024 * 1024;
  // Largest CONNECT accepted (fixed header included; max_packet_size caps it too): a socket
  // that has not connected yet can make the broker hold only this much. Room for long
  // credentials and a will. Default: 256 KiB.
  std::uint32_t max_connect_packet_size = 256 * 1024;
  // Inbound QoS 1/2 publishes a client may have unacknowledged (our Receive Maximum). Default: 128.
  std::uint16_t receive_maximum = 128;
  // Outbound QoS 1/2 messages in flight per session, further capped by the client's Receive
  // Maximum. Default: 64.
  std::uint16_t max_inflight = 64;
  // Messages queued for a session beyond its inflight window (offline or slow). While a
  // connected subscriber holds its publishers (back-pressure, below), what they had already
  // sent is still queued, up to 16 times this (and max_queued_bytes). Default: 1,000.
  std::uint32_t max_queued_messages = 1000;
  // Bytes queued for one session: payloads, topics and the memory of their properties. One
  // message larger than this on its own (up to max_packet_size) waits beside this bound and
  // max_queued_messages, so a file push larger than it neither pushes out what is queued nor
  // is pushed out by what follows; a second such message takes its place (drop_oldest) or is
  // refused (refuse_newest). Default: 8 MiB.
  std::uint64_t max_queued_bytes = 8ull * 1024 * 1024;
  // Default: DropOldest.
  QueueOverflow queue_overflow = QueueOverflow::DropOldest;
  // Whether QoS 0 messages are queued for offline persistent sessions (in memory only: they do
  // not survive a restart). Default: true.
  bool queue_qos0_offline = true;
  // Deliveries waiting in one worker's cross-thread inbox; past it a whole batch is dropped
  // and counted. One batch is always accepted by an empty inbox, so a broadcast to more
  // sessions than this still goes out. Default: 100,000 (a few tens of MB at most).
  std::uint32_t max_worker_inbox = 100000;
  // Bytes written to a connected client's socket and not yet taken by the kernel; past it
  // QoS 0 messages to that client are dropped (QoS 1/2 wait in the session queue instead once
  // max_queued_bytes, if larger, are unsent),
  // unless publisher back-pressure is holding the publishers that feed it (see below; then
  // up to 16 times this).
  // Default: 1 MiB.
  std::uint64_t max_pending_output_bytes = 1024 * 1024;
  // Publisher back-pressure: when a connected subscriber has more unsent bytes than this (or
  // half its session queue is used), the connections publishing to it stop being read, so TCP
  // flow control slows those clients instead of the broker dropping QoS 0 messages. 0 turns
  // back-pressure off (QoS 0 is then dropped past max_pending_output_bytes). Default: 256 KiB.
  std::uint64_t output_high_water_bytes = 256 * 1024;
  // The held publishers are read again once the subscriber's unsent bytes are below this
  // (and its queue below a quarter); at most output_high_water_bytes (create() refuses more).
  // Default: 64 KiB.
  std::uint64_t output_low_water_bytes = 64 * 1024;
  // Longest a subscriber may hold its publishers without progress (its backlog falling by
  // output_low_water_bytes): past it (a dead or stuck reader) they are read again and QoS 0 to
  // that subscriber is dropped past max_pending_output_bytes, as without back-pressure.
  // Default: 2,000 ms.
  std::uint32_t max_publisher_pause_ms = 2000;
  // Topic aliases a 5.0 client may use towards us (Topic Alias Maximum), and the most the
  // broker uses towards a client (each holds its topic's name for the connection). Default: 64.
  std::uint16_t topic_alias_maximum = 64;
  // Highest keep alive accepted; 5.0 clients asking for more (or for none) get it as Server
  // Keep Alive; 3.1.1 clients, which cannot be told, are closed without a CONNACK (no 3.1.1
  // return code says why [MQTT-3.2.2-6]). 0 = no cap.
  // Default: 0.
  std::uint16_t max_keep_alive = 0;
  // Cap on a 5.0 session expiry interval, seconds. Default: 0xFFFFFFFF (no cap).
  std::uint32_t max_session_expiry = 0xFFFFFFFFu;
  // Session expiry for 3.1.1 clean-session-0 sessions, seconds; 0xFFFFFFFF = never (as the
  // 3.1.1 specification says). Default: never.
  std::uint32_t persistent_session_expiry = 0xFFFFFFFFu;
  // Longest client identifier accepted. Default: 65,535 (the protocol's limit).
  std::uint32_t max_client_id_length = 65535;
  // Subscriptions one session may hold; past it SUBACK says Quota Exceeded. Default: 10,000.
  std::uint32_t max_subscriptions_per_session = 10000;
  // Bytes of topic filters one session may hold together; past it SUBACK says Quota Exceeded.
  // A filter may be 65,535 bytes long, and the index, the session and its record each hold
  // it, so the count alone would let one session pin gigabytes. Default: 1 MiB (10,000
  // filters of about 100 bytes).
  std::uint64_t max_subscription_bytes_per_session = 1024 * 1024;
  // Most levels ('/'-separated parts) in a topic name or filter (a shared filter's own part):
  // each level of a subscription costs the topic index memory. A deeper PUBLISH topic is
  // refused like an invalid one (5.0: DISCONNECT 0x90), a deeper filter gets SUBACK 0x8F
  // (5.0) or 0x80. Default: 128.
  std::uint32_t max_topic_levels = 128;
  // Concurrent connections per broker; past it CONNACK says Server Busy. 0 = no cap. Default: 0.
  std::uint32_t max_connections = 0;
  // Highest QoS granted and accepted. Default: 2.
  std::uint8_t max_qos = 2;
  // Whether retained messages are kept. Default: true.
  bool retain_available = true;
  // Retained messages kept broker-wide; past it new topics are refused (counted): a 5.0 QoS 1/2
  // publisher hears 0x97 and its message goes nowhere, others are forwarded without being
  // retained. Default: 1,000,000.
  std::uint64_t max_retained_messages = 1000000;
  // Bytes of retained messages kept broker-wide (payload, topic and properties, as in memory):
  // a message that would pass it is refused the same way, a replacement too when it grows.
  // Without it a million topics of 16 MiB each would fit under max_retained_messages. Default:
  // 4 GiB.
  std::uint64_t max_retained_bytes = std::uint64_t{4} << 30;
};

// How long messages on a topic live when their publisher sets no Message Expiry Interval
// (3.1.1 platforms cannot): it bounds how long they wait for an offline vehicle.
struct TtlRule {
  std::string filter;         // e.g. "vehicle/+/poi"
  std::uint32_t seconds = 0;  // e.g. 86400
};

// Durability for the messages on some topics, overriding Options::durability: telemetry that
// may be lost on a crash can be "async", high-rate sensor data "memory".
struct DurabilityRule {
  std::string filter;
  Durability mode = Durability::Durable;
};

struct Options {
  // MQTT over TCP listeners. Default: one on 0.0.0.0:1883.
  std::vector<ListenerOptions> listeners = {ListenerOptions{}};
  // Worker threads, each with its own event loop and listener socket. 0 = automatic: one per
  // core this process may run on, less one left to the kernel's network work, at least one
  // (on two cores, one worker took less CPU per message than two in every benchmark, and
  // delivered more). Default: 0.
  unsigned workers = 0;
  // While packets arrive closer together than this, a worker that handled only a few of them
  // in a loop turn sleeps this long (plus the kernel's timer slack, 50 us by default) before
  // polling again, so that one wake-up serves several: at 10K msg/s QoS 1 on two cores, 0.5
  // context switches per message instead of 1.1 and a fifth less CPU, for about 0.1 ms more
  // latency. Only while traffic is dense; 0 = off. 0..1,000: "dense" means closer together
  // than the window, so a longer one would hold back traffic that is not (vehicles sending
  // every 5-20 ms waited up to 10 ms with a 10 ms window). Default: 50 us.
  std::uint32_t wake_up_coalesce_us = 50;
  // Directory for durable state (the LMDB store). Default: "./data".
  std::string data_dir = "./data";
  // Default: Durable.
  Durability durability = Durability::Durable;
  // Where state is kept. Not owned; must outlive the Broker. Default: null, meaning an LMDB
  // store in data_dir (or none when everything is Durability::Memory and nothing is logged).
  Store* store = nullptr;
  // Largest size of the LMDB data file. Default: 16 GiB (address space, not disk).
  std::uint64_t store_map_size = 16ull << 30;
  // An unreadable data dir is moved aside and an empty one started, instead of failing.
  // Default: false.
  bool store_move_aside_unreadable = false;
  // Default: Info.
  LogLevel log_level = LogLevel::Info;
  Limits limits;
  // First matching rule wins; a message on no rule's filter gets `durability`. Default: none.
  // A rule above `durability` opens the store (sessions are kept in it, so the rule's messages
  // find their client after a restart), and a "durable" rule makes every commit fsync.
  std::vector<DurabilityRule> durability_rules;
  // First matching rule wins. Default: none (messages without an expiry never expire).
  std::vector<TtlRule> message_ttl_rules;
  // Topic filters whose messages are appended to the durable message log before the
  // publisher's PUBACK (reported vehicle data), e.g. "vehicle/+/telemetry/#". Default: none.
  std::vector<std::string> persisted_filters;
  // How long the log keeps records. Default: 7 days.
  std::uint64_t log_retention_seconds = 7 * 24 * 3600;
  // Payload bytes the log keeps at most, oldest dropped first. Default: 4 GiB.
  std::uint64_t log_max_bytes = 4ull << 30;
};

}  // namespace broker
