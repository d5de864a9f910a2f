#pragma once
// The records behind tests/fixtures/store/records-v<N>.txt: one value per golden line, every
// field set to something distinguishable so that a field read from the wrong offset shows.
// Shared by the golden test and the generator (tests/fixtures/make_golden_store.cpp).
// Never change a sample that a committed golden file holds; add new ones.
//
// Thread safety: pure functions.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "broker/store.hpp"
#include "storage/record_codec.hpp"

namespace broker::test::golden {

inline Message full_message() {
  Message m;
  m.topic = "vehicles/VIN123/telemetry";
  m.payload = std::string("\x00\x01\xff payload", 11);
  m.qos = 2;
  m.retain = true;
  m.message_expiry_interval = 86400;
  m.content_type = "application/octet-stream";
  m.response_topic = "vehicles/VIN123/reply";
  m.correlation_data = "corr-7";
  m.payload_format_indicator = 0;
  m.user_properties = {{"fleet", "north"}, {"fleet", "south"}};
  return m;
}

inline StoredMessage message_full() {
  StoredMessage m;
  m.id = 0x0102030405060708ull;
  m.message = full_message();
  m.origin_client_id = "VIN123";
  m.arrival_ms = 1'700'000'000'123ull;
  m.expires_at_ms = 1'700'086'400'123ull;
  return m;
}

inline StoredMessage message_minimal() {
  StoredMessage m;
  m.id = 1;
  m.message.topic = "t";
  return m;
}

inline StoredSession session_full() {
  StoredSession s;
  s.client_id = "VIN123";
  s.protocol_version = 5;
  s.expiry_interval = 0xFFFFFFFFu;
  s.expires_at_ms = 1'700'000'360'000ull;
  s.subscriptions.push_back(StoredSubscription{"cmd/VIN123/#", 1, true, false, 2, 17});
  s.subscriptions.push_back(StoredSubscription{"$share/g/config/+", 2, false, true, 1, 0});
  StoredWill will;
  will.message = full_message();
  will.delay_interval = 30;
  will.publish_at_ms = 1'700'000'030'000ull;
  s.will = std::move(will);
  s.inbound_qos2 = {1, 65535, 300};
  return s;
}

inline StoredSession session_minimal() {
  StoredSession s;
  s.client_id = "c";
  s.protocol_version = 4;
  return s;
}

inline StoredDelivery delivery() {
  StoredDelivery d;
  d.client_id = "VIN123";
  d.message_id = 0x0102030405060708ull;
  d.qos = 1;
  d.retain = false;
  d.shared = true;
  d.subscription_ids = {17, 0x0FFFFFFFu};
  d.state = DeliveryState::AwaitPubcomp;
  d.packet_id = 4242;
  return d;
}

inline LogRecord log_record() {
  LogRecord r;
  r.sequence = 99;
  r.message = message_full();
  return r;
}

inline constexpr std::uint64_t kCounter = 0x8000000000000001ull;

// Format version 2 on: a delivery that names its shared subscription.
inline StoredDelivery tagged_delivery() {
  StoredDelivery d = delivery();
  d.shared_tag = 0x0A0B0C0Du;
  return d;
}

// Format version 4 on: the reference a record written in chunks leaves under its key.
inline storage::ChunkedRef chunked_ref() { return {0x0102030405060708ull, 0x1122334455ull, 0x0A0B0C0Du}; }

// Where the golden files are: tests run from the build tree, the fixtures sit in the source
// tree (or BROKER_FIXTURES_DIR).
inline std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("BROKER_FIXTURES_DIR")) return std::filesystem::path(env) / "store";
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "fixtures" / "store";
}

// The records of records-v<version>.txt by name.
inline std::map<std::string, std::string> read_golden(unsigned version) {
  std::map<std::string, std::string> out;
  std::ifstream in(fixtures_dir() / ("records-v" + std::to_string(version) + ".txt"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, hex;
    fields >> name >> hex;
    if (auto bytes = storage::from_hex(hex)) out[name] = *bytes;
  }
  return out;
}

}  // namespace broker::test::golden
