// What the core writes to the Store and reads back after a restart, driven in memory: a
// "restart" is a new CoreHarness on the same store.
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "broker/store.hpp"
#include "storage/lmdb/lmdb_store.hpp"
#include "support/core_harness.hpp"
#include "support/faulty_store.hpp"
#include "unit/storage/store_test_util.hpp"

using namespace broker;
using namespace broker::protocol;
using broker::test::CoreHarness;
using broker::test::VirtualClient;

namespace {

Publish publish(const std::string& topic, const std::string& payload, std::uint8_t qos = 0,
                std::uint16_t id = 0, bool retain = false) {
  return broker::test::make_publish(topic, payload, qos, id, retain);
}

Connect connect_packet(const std::string& id, ProtocolVersion v, bool clean, std::uint32_t expiry) {
  Connect c;
  c.version = v;
  c.client_id = id;
  c.clean_start = clean;
  if (v == ProtocolVersion::V5 && expiry) c.properties.session_expiry_interval = expiry;
  return c;
}

Subscribe subscribe_packet(const std::string& filter, std::uint8_t qos) {
  Subscribe s;
  s.packet_id = 1;
  s.entries.push_back(SubscribeEntry{filter, qos, false, false, 0});
  return s;
}

// With a store that commits synchronously (the memory store): the SUBACK of a persistent
// session comes once its record is committed.
void subscribe(VirtualClient& c, const std::string& filter, std::uint8_t qos) {
  c.send(subscribe_packet(filter, qos));
  c.take<Suback>();
}

// Everything a store holds, for checks.
struct Counts final : StoreVisitor {
  std::size_t messages = 0, sessions = 0, deliveries = 0, retained = 0;
  void on_message(StoredMessage&&) override { ++messages; }
  void on_session(StoredSession&&) override { ++sessions; }
  void on_delivery(StoredDelivery&&) override { ++deliveries; }
  void on_retained(StoredMessage&&) override { ++retained; }
};
Counts count(Store& store) {
  Counts c;
  REQUIRE(store.load(c).is_ok());
  return c;
}

}  // namespace

TEST_CASE("persistence: an offline session's queue survives a restart, in order", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("car-1", ProtocolVersion::V311, false);
    subscribe(*sub, "vehicle/car-1/poi", 1);
    sub->drop();
    auto platform = h.connect("platform");
    for (int i = 0; i < 3; ++i)
      platform->send(publish("vehicle/car-1/poi", "poi-" + std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
    for (int i = 0; i < 3; ++i) CHECK(platform->take<Ack>().type == PacketType::Puback);
  }
  CoreHarness h({}, 2, store.get());
  auto car = h.open(ProtocolVersion::V311);
  car->send(connect_packet("car-1", ProtocolVersion::V311, false, 0));
  CHECK(car->take<Connack>().session_present);
  for (int i = 0; i < 3; ++i) {
    auto p = car->take<Publish>();
    CHECK(*p.payload == "poi-" + std::to_string(i));
    car->send(Ack{PacketType::Puback, p.packet_id, ReasonCode::Success, {}});
  }
  // The subscription came back too.
  auto platform = h.connect("platform");
  platform->send(publish("vehicle/car-1/poi", "live", 1, 9));
  CHECK(*car->take<Publish>().payload == "live");
}

// Payloads of the PUBLISH packets `c` received, acknowledging none.
std::multiset<std::string> publishes(VirtualClient& c) {
  std::multiset<std::string> got;
  for (const auto& packet : c.received())
    if (auto* p = std::get_if<Publish>(&packet)) got.insert(std::string(*p->payload));
  return got;
}

TEST_CASE("persistence: a session in two shared groups keeps both copies of a message across a restart", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto x = h.connect("x", ProtocolVersion::V5, true, 3600);
    subscribe(*x, "$share/g1/f/#", 1);
    subscribe(*x, "$share/g2/f/+", 1);
    subscribe(*x, "f/a", 1);
    x->drop();
    auto pub = h.connect("pub");
    pub->send(publish("f/a", "m", 1, 1));
    CHECK(pub->take<Ack>().type == PacketType::Puback);
  }
  CoreHarness h({}, 2, store.get());
  auto x = h.open(ProtocolVersion::V5);
  x->send(connect_packet("x", ProtocolVersion::V5, false, 3600));
  CHECK(x->take<Connack>().session_present);
  CHECK(publishes(*x) == std::multiset<std::string>{"m", "m", "m"});  // one per subscription
}

TEST_CASE("persistence: both copies for subscriptions that differ in Retain As Published survive a restart",
          "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto x = h.connect("rap", ProtocolVersion::V5, true, 3600);
    Subscribe keep = subscribe_packet("r/a", 1);
    keep.entries[0].retain_as_published = true;
    x->send(keep);
    x->take<Suback>();
    subscribe(*x, "r/+", 1);
    x->drop();
    auto pub = h.connect("pub");
    pub->send(publish("r/a", "m", 1, 1, true));
    CHECK(pub->take<Ack>().type == PacketType::Puback);
  }
  CoreHarness h({}, 2, store.get());
  auto x = h.open(ProtocolVersion::V5);
  x->send(connect_packet("rap", ProtocolVersion::V5, false, 3600));
  CHECK(x->take<Connack>().session_present);
  std::multiset<bool> retain_flags;
  for (const auto& packet : x->received())
    if (auto* p = std::get_if<Publish>(&packet)) retain_flags.insert(p->retain);
  CHECK(retain_flags == std::multiset<bool>{false, true});
}

TEST_CASE("persistence: a stop keeps each member's unacknowledged shared messages with its own session", "[persistence]") {
  // At a stop every member goes offline in turn: handing messages to members not yet closed
  // would leave each message with several members for the restart.
  // One worker: the members close one after another, each while the other is still online.
  auto store = make_memory_store();
  {
    CoreHarness h({}, 1, store.get());
    auto m1 = h.connect("member-1", ProtocolVersion::V5, true, 3600);
    auto m2 = h.connect("member-2", ProtocolVersion::V5, true, 3600);
    subscribe(*m1, "$share/g/jobs", 1);
    subscribe(*m2, "$share/g/jobs", 1);
    auto pub = h.connect("boss");
    for (int i = 0; i < 4; ++i) pub->send(publish("jobs", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
    CHECK(publishes(*m1).size() == 2);
    h.engine().worker(0).drain();
    m1->drop();
    m2->drop();
    CHECK(publishes(*m2).size() == 2);  // none of member-1's went out to member-2
  }
  CoreHarness h({}, 2, store.get());
  std::multiset<std::string> all;
  std::vector<std::unique_ptr<VirtualClient>> members;  // kept connected: a leaver hands on
  for (const char* id : {"member-1", "member-2"}) {
    auto& m = members.emplace_back(h.open(ProtocolVersion::V5));
    m->send(connect_packet(id, ProtocolVersion::V5, false, 3600));
    CHECK(m->take<Connack>().session_present);
    auto got = publishes(*m);
    CHECK(got.size() == 2);
    all.insert(got.begin(), got.end());
  }
  CHECK(all == std::multiset<std::string>{"0", "1", "2", "3"});
}

TEST_CASE("persistence: a retained message on a topic made memory-only does not come back", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto pub = h.connect("pub");
    pub->send(publish("tele/a", "v1", 1, 1, true));
    CHECK(pub->take<Ack>().type == PacketType::Puback);
  }
  Options memory_rule;
  memory_rule.durability_rules = {DurabilityRule{"tele/#", Durability::Memory}};
  {
    CoreHarness h(memory_rule, 2, store.get());
    auto pub = h.connect("pub");
    pub->send(publish("tele/a", "v2", 1, 1, true));  // replaced in memory only
  }
  CHECK(count(*store).retained == 0);
  CoreHarness h(memory_rule, 2, store.get());
  auto sub = h.connect("sub");
  subscribe(*sub, "tele/#", 1);
  CHECK(publishes(*sub).empty());
}

TEST_CASE("persistence: a stored retained message whose topic is invalid is dropped at recovery", "[persistence]") {
  // A plug-in store may hand back anything: "x/#" would go out as an invalid PUBLISH.
  auto store = make_memory_store();
  WriteBatch b;
  for (const char* topic : {"x/#", "", "ok/topic"}) {
    StoredMessage r;
    r.id = 1;
    r.message.topic = topic;
    r.message.payload.assign(1, 'v');  // GCC 12 warns (-Wrestrict) on "= \"v\"" here, wrongly
    r.message.retain = true;
    b.put_retained(r);
  }
  REQUIRE(broker::test::submit_and_wait(*store, std::move(b)));
  CoreHarness h({}, 2, store.get());
  auto sub = h.connect("sub");
  subscribe(*sub, "#", 0);
  auto got = sub->take<Publish>();
  CHECK(got.topic == "ok/topic");
  CHECK(sub->received().empty());
  CHECK(count(*store).retained == 1);
}

TEST_CASE("persistence: acknowledged deliveries and their messages leave the store", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("car-2", ProtocolVersion::V5, true, 3600);
    subscribe(*sub, "t", 1);
    auto pub = h.connect("pub");
    pub->send(publish("t", "x", 1, 1));
    auto p = sub->take<Publish>();
    sub->send(Ack{PacketType::Puback, p.packet_id, ReasonCode::Success, {}});
  }
  auto c = count(*store);
  CHECK(c.sessions == 1);
  CHECK(c.deliveries == 0);
  CHECK(c.messages == 0);
}

TEST_CASE("persistence: an unacknowledged QoS 1 message is resent with DUP and its packet id after a restart", "[persistence]") {
  auto store = make_memory_store();
  std::uint16_t first_id = 0;
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("car-3", ProtocolVersion::V5, true, 3600);
    subscribe(*sub, "t", 1);
    auto pub = h.connect("pub");
    pub->send(publish("t", "once", 1, 1));
    first_id = sub->take<Publish>().packet_id;
  }
  CoreHarness h({}, 2, store.get());
  auto sub = h.open(ProtocolVersion::V5);
  sub->send(connect_packet("car-3", ProtocolVersion::V5, false, 3600));
  CHECK(sub->take<Connack>().session_present);
  auto again = sub->take<Publish>();
  CHECK(again.dup);
  CHECK(again.packet_id == first_id);
  CHECK(*again.payload == "once");
}

TEST_CASE("persistence: QoS 2 state on both sides survives a restart", "[persistence]") {
  auto store = make_memory_store();
  std::uint16_t out_id = 0;
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("q2-sub", ProtocolVersion::V5, true, 3600);
    subscribe(*sub, "q2", 2);
    auto pub = h.connect("q2-pub", ProtocolVersion::V5, true, 3600);
    pub->send(publish("q2", "exactly-once", 2, 5));
    CHECK(pub->take<Ack>().type == PacketType::Pubrec);  // PUBREL not sent before the restart
    out_id = sub->take<Publish>().packet_id;
    sub->send(Ack{PacketType::Pubrec, out_id, ReasonCode::Success, {}});
    CHECK(sub->take<Ack>().type == PacketType::Pubrel);  // PUBCOMP not sent before the restart
  }
  CoreHarness h({}, 2, store.get());
  auto sub = h.open(ProtocolVersion::V5);
  sub->send(connect_packet("q2-sub", ProtocolVersion::V5, false, 3600));
  sub->take<Connack>();
  auto rel = sub->take<Ack>();  // [MQTT-4.4.0-1] the PUBREL again, not the message
  CHECK(rel.type == PacketType::Pubrel);
  CHECK(rel.packet_id == out_id);
  auto pub = h.open(ProtocolVersion::V5);
  pub->send(connect_packet("q2-pub", ProtocolVersion::V5, false, 3600));
  pub->take<Connack>();
  auto dup = publish("q2", "exactly-once", 2, 5);
  dup.dup = true;
  pub->send(dup);  // the publisher never saw PUBREC: it resends; the broker must not route it again
  CHECK(pub->take<Ack>().type == PacketType::Pubrec);
  CHECK(sub->received().empty());
}

TEST_CASE("persistence: retained messages survive a restart; clearing removes them", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto pub = h.connect("cfg");
    pub->send(publish("vehicle/all/config", "v1", 1, 1, true));
    pub->send(publish("vehicle/old/config", "gone", 1, 2, true));
    pub->send(publish("vehicle/old/config", "", 1, 3, true));
  }
  CHECK(count(*store).retained == 1);
  CoreHarness h({}, 2, store.get());
  auto sub = h.connect("late");
  subscribe(*sub, "vehicle/+/config", 1);
  auto got = sub->take<Publish>();
  CHECK(got.retain);
  CHECK(*got.payload == "v1");
  CHECK(sub->received().empty());
}

TEST_CASE("persistence: a retained message left unserved by a lowered limit is deleted by a clear of its topic",
          "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto pub = h.connect("cfg");
    for (int i = 0; i < 3; ++i)
      pub->send(publish("cfg/" + std::to_string(i), "v", 1, static_cast<std::uint16_t>(i + 1), true));
  }
  Options lowered;
  lowered.limits.max_retained_messages = 1;
  {
    CoreHarness h(lowered, 2, store.get());  // one of the three is served, two wait in the store
    CHECK(h.engine().retained().size() == 1);
    auto pub = h.connect("cfg");
    for (int i = 0; i < 3; ++i)
      pub->send(publish("cfg/" + std::to_string(i), "", 1, static_cast<std::uint16_t>(i + 1), true));
    h.settle();
  }
  CHECK(count(*store).retained == 0);  // a cleared topic must not come back under a higher limit
}

TEST_CASE("persistence: an expired retained message leaves the store while the broker runs", "[persistence]") {
  // Alerts retained on rotating topics with an expiry must not fill the disk until a restart.
  auto store = make_memory_store();
  CoreHarness h({}, 2, store.get());
  auto pub = h.connect("alerts");
  for (std::uint16_t i = 1; i <= 3; ++i) {
    auto p = publish("alert/" + std::to_string(i), "a", 1, i, true);
    p.properties.message_expiry_interval = 5;
    pub->send(p);
  }
  pub->send(publish("alert/keep", "k", 1, 4, true));
  h.settle();
  CHECK(count(*store).retained == 4);
  h.advance(61000);  // past the expiry and the minute's purge
  CHECK(count(*store).retained == 1);
}

TEST_CASE("persistence: clean sessions write nothing", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("clean", ProtocolVersion::V5, true, 0);
    subscribe(*sub, "t", 1);
    auto pub = h.connect("pub");
    pub->send(publish("t", "x", 1, 1));
    sub->take<Publish>();
  }
  auto c = count(*store);
  CHECK(c.sessions == 0);
  CHECK(c.deliveries == 0);
}

TEST_CASE("persistence: a session resumed with Session Expiry 0 keeps its queue's order and leaves no record",
          "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto car = h.connect("car-9", ProtocolVersion::V5, true, 3600);
    subscribe(*car, "v", 1);
    subscribe(*car, "t", 2);
    car->drop();
    auto pub = h.connect("pub");
    pub->send(publish("t", "q2", 2, 1));
    CHECK(pub->take<Ack>().type == PacketType::Pubrec);
    pub->send(publish("v", "a0", 1, 2));
    CHECK(pub->take<Ack>().type == PacketType::Puback);
    CHECK(count(*store).deliveries == 2);
    // The live message comes before the store's next commit, which the queued ones, still
    // marked stored, used to wait for.
    h.hold_settling(true);
    auto back = h.open(ProtocolVersion::V5, h.engine().home_worker("car-9"));
    back->send(connect_packet("car-9", ProtocolVersion::V5, false, 0));  // no longer persistent
    CHECK(back->take<Connack>().session_present);
    pub->send(publish("v", "b", 1, 3));
    h.hold_settling(false);
    h.settle();
    std::vector<std::string> got;
    while (!back->received().empty()) got.emplace_back(*back->take<Publish>().payload);
    CHECK(got == std::vector<std::string>{"q2", "a0", "b"});  // [MQTT-4.6.0-6]
    back->drop();  // unacknowledged: the session ends with them
    h.settle();
    auto c = count(*store);
    CHECK(c.sessions == 0);
    CHECK(c.deliveries == 0);
    h.connect("car-9", ProtocolVersion::V5, true, 30);  // a new persistent session
  }
  // Nothing of the ended session comes back in the new one after a restart.
  CoreHarness h({}, 2, store.get());
  auto car = h.open(ProtocolVersion::V5);
  car->send(connect_packet("car-9", ProtocolVersion::V5, false, 30));
  CHECK(car->take<Connack>().session_present);
  h.settle();
  CHECK(car->received().empty());
}

TEST_CASE("persistence: a message on its way to a session that ends meanwhile leaves no record for the client id's next session",
          "[persistence]") {
  auto store = make_memory_store();
  std::string car_id = "car-", pub_id = "platform-";
  {
    CoreHarness h({}, 2, store.get());
    for (int i = 0; h.engine().home_worker(car_id) != 1; ++i) car_id = "car-" + std::to_string(i);
    for (int i = 0; h.engine().home_worker(pub_id) != 0; ++i) pub_id = "platform-" + std::to_string(i);
    auto car = h.connect(car_id, ProtocolVersion::V5, true, 3600);
    subscribe(*car, "cmd/#", 1);
    car->drop();
    auto fleet = h.connect("fleet-log", ProtocolVersion::V5, true, 3600);  // keeps the message stored
    subscribe(*fleet, "cmd/#", 1);
    fleet->drop();
    auto pub = h.connect(pub_id);
    h.hold_settling(true);
    // Routed on the platform's worker: the car's record waits in that worker's batch and the
    // delivery on its way to the car's worker.
    pub->send(publish("cmd/x", "old", 1, 1));
    // The car starts a new persistent session there first, without the subscription.
    auto back = h.open(ProtocolVersion::V5, 1);
    back->send(connect_packet(car_id, ProtocolVersion::V5, true, 3600));
    h.engine().worker(1).end_of_turn();  // the old session's delete, the new session's record
    h.engine().worker(0).end_of_turn();  // the record the routing wrote: after that delete
    h.hold_settling(false);
    h.settle();
    CHECK_FALSE(back->take<Connack>().session_present);  // once the delete is committed
    CHECK(back->received().empty());
    CHECK(count(*store).deliveries == 1);  // the fleet log's
  }
  CoreHarness h({}, 2, store.get());
  auto car = h.open(ProtocolVersion::V5);
  car->send(connect_packet(car_id, ProtocolVersion::V5, false, 3600));
  CHECK(car->take<Connack>().session_present);
  h.settle();
  CHECK(car->received().empty());
}

TEST_CASE("persistence: every retained copy a SUBSCRIBE sent has a record of its own and is sent again after a restart",
          "[persistence]") {
  // Overlapping subscriptions each get the retained configuration, and so does a subscription
  // made again; unacknowledged, every copy comes back after a restart, not one of them.
  auto store = make_memory_store();
  // The subscription identifiers of the PUBLISH packets `c` received, added to `ids` (a SUBACK
  // waits for its session's record: it may come after them).
  auto take_ids = [](VirtualClient& c, std::multiset<std::uint32_t>& ids) {
    while (!c.received().empty()) {
      if (std::holds_alternative<Suback>(c.received().front())) {
        c.take<Suback>();
        continue;
      }
      auto p = c.take<Publish>();
      CHECK(p.retain);
      for (std::uint32_t id : p.properties.subscription_identifiers) ids.insert(id);
    }
  };
  {
    CoreHarness h({}, 2, store.get());
    auto pub = h.connect("platform");
    pub->send(publish("cfg/car-1", "v1", 1, 1, true));
    pub->take<Ack>();
    auto car = h.connect("car-1", ProtocolVersion::V5, true, 3600);
    std::multiset<std::uint32_t> ids;
    for (auto [filter, id] : {std::pair{"cfg/#", 1u}, {"cfg/+", 2u}, {"cfg/#", 3u}}) {
      Subscribe s = subscribe_packet(filter, 1);
      s.properties.subscription_identifiers.push_back(id);
      car->send(s);
      h.settle();
      take_ids(*car, ids);
    }
    CHECK(ids == std::multiset<std::uint32_t>{1, 2, 3});
    CHECK(count(*store).deliveries == 3);
    car->drop();
  }
  CoreHarness h({}, 2, store.get());
  auto car = h.open(ProtocolVersion::V5);
  car->send(connect_packet("car-1", ProtocolVersion::V5, false, 3600));
  CHECK(car->take<Connack>().session_present);
  h.settle();
  std::multiset<std::uint32_t> ids;
  take_ids(*car, ids);
  CHECK(ids == std::multiset<std::uint32_t>{1, 2, 3});
}

TEST_CASE("persistence: a session that expired is removed from the store [MQTT-3.1.2-23]", "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    auto c = h.connect("brief", ProtocolVersion::V5, true, 2);
    subscribe(*c, "t", 1);
    c->drop();
    CHECK(count(*store).sessions == 1);
    h.advance(3000);
  }
  CHECK(count(*store).sessions == 0);
}

TEST_CASE("persistence: a durable PUBACK waits for the commit", "[persistence]") {
  broker::test::TempDir dir;
  LmdbStoreOptions o;
  o.dir = dir.path();
  o.map_size = 64ull << 20;
  auto opened = open_lmdb_store(o);
  REQUIRE(opened.is_ok());
  auto store = std::move(opened).value();
  {
    CoreHarness h({}, 2, store.get());
    auto sub = h.connect("car-4", ProtocolVersion::V311, false);
    sub->send(subscribe_packet("t", 1));
    store->flush();  // the SUBACK waits for the session's record
    h.settle();
    sub->take<Suback>();
    sub->drop();
    auto pub = h.connect("pub");
    storage::lmdb_store_hold_writer_for_test(*store, true);
    pub->send(publish("t", "durable", 1, 7));
    CHECK(pub->received().empty());  // not acknowledged before it is on disk
    storage::lmdb_store_hold_writer_for_test(*store, false);
    store->flush();
    h.settle();
    auto ack = pub->take<Ack>();
    CHECK(ack.type == PacketType::Puback);
    CHECK(ack.packet_id == 7);
  }
  store.reset();
}

namespace {
// A store whose batches fail on demand, behind a broker core in durable mode.
struct FaultyFixture {
  broker::test::FaultyStore store{make_memory_store()};
};
}  // namespace

TEST_CASE("persistence: a failed write is never acknowledged; 5.0 hears why", "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto car = h.connect("car-f", ProtocolVersion::V311, false);
  subscribe(*car, "t", 1);
  car->drop();
  auto pub = h.connect("pub-f");  // 5.0
  f.store.fail_from(f.store.submitted() + 1, Status::unavailable("store full: map size reached"));
  pub->send(publish("t", "lost?", 1, 3));
  auto ack = pub->take<Ack>();
  CHECK(ack.packet_id == 3);
  CHECK(ack.reason == ReasonCode::QuotaExceeded);
  f.store.clear_faults();
  pub->send(publish("t", "kept", 1, 4));
  CHECK(pub->take<Ack>().reason == ReasonCode::Success);
}

TEST_CASE("persistence: a refused message is not delivered from a queue; the resend is the only copy", "[persistence]") {
  for (std::uint8_t qos : {std::uint8_t{1}, std::uint8_t{2}}) {
    FaultyFixture f;
    CoreHarness h({}, 2, &f.store);
    auto car = h.connect("car-r", ProtocolVersion::V5, true, 3600);
    subscribe(*car, "t", 2);
    car->drop();  // offline: the message waits in its queue
    auto pub = h.connect("pub-r");  // 5.0
    f.store.fail_from(f.store.submitted() + 1, Status::unavailable("store full: map size reached"));
    pub->send(publish("t", "once", qos, 3));
    CHECK(pub->take<Ack>().reason == ReasonCode::QuotaExceeded);
    f.store.clear_faults();
    pub->send(publish("t", "once", qos, 4));  // the publisher tries again
    CHECK(pub->take<Ack>().reason == ReasonCode::Success);
    auto back = h.open(ProtocolVersion::V5);
    back->send(connect_packet("car-r", ProtocolVersion::V5, false, 3600));
    CHECK(back->take<Connack>().session_present);
    CHECK(publishes(*back) == std::multiset<std::string>{"once"});
  }
}

TEST_CASE("persistence: a session record that failed to write is written once the store has room", "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  f.store.fail_from(f.store.submitted() + 1, Status::unavailable("store full: map size reached"));
  auto car = h.connect("car-full", ProtocolVersion::V311, false);  // told: session kept
  subscribe(*car, "cmd", 1);
  CHECK(count(f.store).sessions == 0);
  h.advance(250);  // still full: tried again, failed again
  CHECK(count(f.store).sessions == 0);
  f.store.clear_faults();
  h.advance(250);
  CHECK(count(f.store).sessions == 1);
  h.advance(250);  // written once: nothing more to do
  const std::uint64_t submitted = f.store.submitted();
  h.advance(250);
  CHECK(f.store.submitted() == submitted);
}

TEST_CASE("persistence: a failed write disconnects a 3.1.1 publisher, which has no failure code", "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto car = h.connect("car-g", ProtocolVersion::V311, false);
  subscribe(*car, "t", 1);
  car->drop();
  auto pub = h.connect("pub-g", ProtocolVersion::V311);
  f.store.fail_from(f.store.submitted() + 1, Status::io_error("disk failed"));
  pub->send(publish("t", "x", 1, 5));
  CHECK(pub->received().empty());  // no PUBACK for what was not stored
  CHECK(pub->closed_by_broker());
}

TEST_CASE("persistence: acknowledgements keep PUBLISH order while one waits for the store [MQTT-4.6.0-2]", "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto car = h.connect("car-h", ProtocolVersion::V311, false);
  subscribe(*car, "stored", 1);
  car->drop();
  auto pub = h.connect("pub-h");
  f.store.hold_writes(true);
  pub->send(publish("stored", "a", 1, 1));     // waits for the commit
  pub->send(publish("nobody/here", "b", 1, 2));  // needs none, but must not overtake
  Publish not_utf8 = publish("stored", "\xff", 1, 3);
  not_utf8.properties.payload_format_indicator = 1;
  pub->send(std::move(not_utf8));           // refused with 0x99: must not overtake either
  pub->send(publish("$SYS/x", "d", 2, 4));  // refused with 0x87
  CHECK(pub->received().empty());
  f.store.release_held();
  f.store.hold_writes(false);
  h.settle();
  CHECK(pub->take<Ack>().packet_id == 1);
  CHECK(pub->take<Ack>().packet_id == 2);
  const Ack not_utf8_ack = pub->take<Ack>(), sys_ack = pub->take<Ack>();
  CHECK((not_utf8_ack.packet_id == 3 && not_utf8_ack.reason == ReasonCode::PayloadFormatInvalid));
  CHECK((sys_ack.packet_id == 4 && sys_ack.type == PacketType::Pubrec && sys_ack.reason == ReasonCode::NotAuthorized));
}

TEST_CASE("persistence: nothing acknowledged is among the writes a crash loses", "[persistence]") {
  FaultyFixture f;
  {
    CoreHarness h({}, 2, &f.store);
    auto car = h.connect("car-i", ProtocolVersion::V311, false);
    subscribe(*car, "t", 1);
    car->drop();
    auto pub = h.connect("pub-i");
    pub->send(publish("t", "1", 1, 1));
    CHECK(pub->take<Ack>().packet_id == 1);
    f.store.hold_writes(true);
    pub->send(publish("t", "2", 1, 2));
    CHECK(pub->received().empty());
    f.store.drop_unsynced();  // the crash
  }
  f.store.hold_writes(false);
  CoreHarness h({}, 2, &f.store);
  auto car = h.open(ProtocolVersion::V311);
  car->send(connect_packet("car-i", ProtocolVersion::V311, false, 0));
  car->take<Connack>();
  CHECK(*car->take<Publish>().payload == "1");  // the acknowledged one is there
}

TEST_CASE("persistence: a TTL rule bounds how long a message waits for an offline vehicle", "[persistence]") {
  Options o;
  o.message_ttl_rules.push_back(TtlRule{"vehicle/+/poi", 60});
  auto store = make_memory_store();
  CoreHarness h(o, 2, store.get());
  auto car = h.connect("car-ttl", ProtocolVersion::V311, false);
  subscribe(*car, "vehicle/car-ttl/#", 1);
  car->drop();
  auto platform = h.connect("platform-ttl", ProtocolVersion::V311);  // 3.1.1: no expiry property
  platform->send(publish("vehicle/car-ttl/poi", "old poi", 1, 1));
  platform->send(publish("vehicle/car-ttl/config", "config", 1, 2));
  h.advance(61000);
  auto back = h.open(ProtocolVersion::V311);
  back->send(connect_packet("car-ttl", ProtocolVersion::V311, false, 0));
  back->take<Connack>();
  CHECK(*back->take<Publish>().payload == "config");  // no rule: kept
  CHECK(back->received().empty());                    // the POI expired
}

TEST_CASE("persistence: messages on persisted filters go to the log before the PUBACK", "[persistence]") {
  Options o;
  o.persisted_filters.push_back("vehicle/+/telemetry/#");
  // Whatever the topic's durability: the log's promise is its own.
  SECTION("durable") {}
  SECTION("a memory rule on the topic") {
    o.durability_rules.push_back(DurabilityRule{"vehicle/+/telemetry/#", Durability::Memory});
  }
  SECTION("async overall") { o.durability = Durability::Async; }
  broker::test::FaultyStore store{make_memory_store()};
  CoreHarness h(o, 2, &store);
  auto car = h.connect("car-log", ProtocolVersion::V311);
  store.hold_writes(true);
  car->send(publish("vehicle/car-log/telemetry/speed", "88", 1, 1));
  car->send(publish("vehicle/car-log/status", "not logged", 1, 2));
  CHECK(car->received().empty());  // waits for the log append
  store.release_held();
  store.hold_writes(false);
  h.settle();
  CHECK(car->take<Ack>().packet_id == 1);
  CHECK(car->take<Ack>().packet_id == 2);
  auto records = store.read_log(1, 10);
  REQUIRE(records.is_ok());
  REQUIRE(records.value().size() == 1);
  CHECK(records.value()[0].message.message.topic == "vehicle/car-log/telemetry/speed");
  CHECK(records.value()[0].message.message.payload == "88");
  CHECK(records.value()[0].message.origin_client_id == "car-log");
  // A consumer commits where it got to and resumes there.
  CHECK(store.commit_consumer_offset("warehouse", records.value()[0].sequence + 1).is_ok());
  CHECK(store.consumer_offset("warehouse").value() == records.value()[0].sequence + 1);
}

TEST_CASE("persistence: a persistent session's SUBACK and UNSUBACK wait for its record", "[persistence]") {
  // A 5.0 vehicle told session_present does not subscribe again: a subscription it was told
  // of must survive a crash.
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto car = h.connect("car-sub", ProtocolVersion::V5, true, 3600);
  f.store.hold_writes(true);
  car->send(subscribe_packet("cmd", 1));
  CHECK(car->received().empty());
  f.store.release_held();
  h.settle();
  CHECK(car->take<Suback>().packet_id == 1);
  Unsubscribe u;
  u.packet_id = 2;
  u.filters.push_back("cmd");
  car->send(u);
  CHECK(car->received().empty());
  f.store.release_held();
  f.store.hold_writes(false);
  h.settle();
  CHECK(car->take<Unsuback>().packet_id == 2);
  // A session that ends with its connection has nothing to wait for.
  auto passing = h.connect("passer-by", ProtocolVersion::V5);
  f.store.hold_writes(true);
  passing->send(subscribe_packet("cmd", 1));
  CHECK(passing->take<Suback>().packet_id == 1);
  f.store.hold_writes(false);
}

TEST_CASE("persistence: durability rules pick async or memory for some topics", "[persistence]") {
  Options o;
  o.durability_rules.push_back(DurabilityRule{"raw/#", Durability::Async});
  o.durability_rules.push_back(DurabilityRule{"sensor/#", Durability::Memory});
  broker::test::FaultyStore store{make_memory_store()};
  CoreHarness h(o, 2, &store);
  auto car = h.connect("car-rules", ProtocolVersion::V311, false);
  subscribe(*car, "#", 1);
  car->drop();
  auto pub = h.connect("pub-rules");
  store.hold_writes(true);
  pub->send(publish("raw/1", "a", 1, 1));  // async: stored, acknowledged at once
  CHECK(pub->take<Ack>().packet_id == 1);
  pub->send(publish("sensor/1", "b", 1, 2));  // memory: not stored
  CHECK(pub->take<Ack>().packet_id == 2);
  store.release_held();
  store.hold_writes(false);
  h.settle();
  auto c = count(store);
  CHECK(c.deliveries == 1);  // raw/1 only
  CHECK(c.messages == 1);
}

TEST_CASE("persistence: a QoS 2 PUBLISH waiting for the store is not resent to a reconnected client before it is on disk",
          "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto sub = h.connect("q2-wait", ProtocolVersion::V5, true, 3600);
  subscribe(*sub, "q2w", 2);
  auto pub = h.connect("q2-wait-pub", ProtocolVersion::V5);
  f.store.hold_writes(true);
  pub->send(publish("q2w", "once", 2, 1));
  CHECK(sub->received().empty());  // exactly once: not before its state is stored
  sub->drop();
  auto back = h.open(ProtocolVersion::V5);
  back->send(connect_packet("q2-wait", ProtocolVersion::V5, false, 3600));
  CHECK(back->take<Connack>().session_present);
  CHECK(back->received().empty());  // still not on disk: still not sent
  f.store.release_held();
  f.store.hold_writes(false);
  h.settle();
  auto p = back->take<Publish>();
  CHECK(*p.payload == "once");
  CHECK(back->received().empty());  // once
}

TEST_CASE("persistence: a session discarded by Clean Start stays discarded once its CONNACK went out [MQTT-3.1.2-4]",
          "[persistence]") {
  const bool v5 = GENERATE(true, false);
  const ProtocolVersion version = v5 ? ProtocolVersion::V5 : ProtocolVersion::V311;
  FaultyFixture f;
  {
    CoreHarness h({}, 2, &f.store);
    auto car = h.connect("car-cs", ProtocolVersion::V5, true, 3600);
    subscribe(*car, "cmd", 1);
    car->drop();
    auto platform = h.connect("platform-cs");
    platform->send(publish("cmd", "old", 1, 1));
    CHECK(platform->take<Ack>().packet_id == 1);

    f.store.hold_writes(true);
    car = h.open(version);
    car->send(connect_packet("car-cs", version, true, 3600));
    car->send(Pingreq{});  // handled after the CONNACK, never before it
    h.settle();
    CHECK(car->received().empty());
    CHECK(car->reading_paused());
    f.store.release_held();
    h.settle();
    CHECK_FALSE(car->take<Connack>().session_present);
    car->take<Pingresp>();
    CHECK_FALSE(car->reading_paused());

    // The next discard is lost with the writes a crash loses: so is its CONNACK.
    f.store.hold_writes(false);
    car->drop();
    car = h.connect("car-cs", ProtocolVersion::V5, false, 3600);  // 3.1.1's clean one ended
    subscribe(*car, "cmd", 1);
    car->drop();
    h.settle();
    f.store.hold_writes(true);
    car = h.open(version);
    car->send(connect_packet("car-cs", version, true, 3600));
    h.settle();
    CHECK(car->received().empty());
    f.store.drop_unsynced();  // the crash
  }
  f.store.hold_writes(false);
  CoreHarness h({}, 2, &f.store);
  auto car = h.open(ProtocolVersion::V5);
  car->send(connect_packet("car-cs", ProtocolVersion::V5, false, 3600));
  CHECK(car->take<Connack>().session_present);  // never told it was gone: it is still there
  car->drop();
}

TEST_CASE("persistence: a CONNACK waiting for a discarded session's delete is not preceded by a DISCONNECT",
          "[persistence]") {
  FaultyFixture f;
  CoreHarness h({}, 2, &f.store);
  auto car = h.connect("car-to", ProtocolVersion::V5, true, 3600);
  car->drop();
  f.store.hold_writes(true);
  auto first = h.open(ProtocolVersion::V5);
  first->send(connect_packet("car-to", ProtocolVersion::V5, true, 3600));
  h.settle();
  auto second = h.open(ProtocolVersion::V5);
  second->send(connect_packet("car-to", ProtocolVersion::V5, false, 3600));
  h.settle();
  CHECK(first->closed_by_broker());
  CHECK(first->received().empty());  // [MQTT-3.14.0-1] no DISCONNECT before a CONNACK
  f.store.release_held();
  f.store.hold_writes(false);
  h.settle();
  CHECK(first->received().empty());
  CHECK(second->take<Connack>().session_present);
}

// A vehicle connected when the broker crashes, with session expiry 10 s and a will delayed 5 s,
// on a broker that restarts `down_ms` later.
struct CrashWhileConnected {
  broker::test::FaultyStore store{make_memory_store()};
  std::uint64_t crashed_at = 0;

  CrashWhileConnected() {
    CoreHarness h({}, 2, &store);
    auto watcher = h.connect("watcher-crash", ProtocolVersion::V5, true, 3600);
    subscribe(*watcher, "will/#", 1);
    watcher->drop();
    auto car = h.open(ProtocolVersion::V5);
    Connect c = connect_packet("car-crash", ProtocolVersion::V5, true, 10);
    Will will;
    will.topic = "will/car-crash";
    will.payload = Payload::copy_of("offline");
    will.qos = 1;
    will.properties.will_delay_interval = 5;
    c.will = std::move(will);
    car->send(c);
    h.settle();
    car->take<Connack>();
    h.advance(3000);  // the broker runs on, and says so
    crashed_at = h.clock().now_ms();
    store.hold_writes(true);  // the crash: the car's record still says connected
  }

  Connack reconnect_car(CoreHarness& h) {
    auto car = h.open(ProtocolVersion::V5);
    car->send(connect_packet("car-crash", ProtocolVersion::V5, false, 10));
    h.settle();
    return car->take<Connack>();
  }
  std::unique_ptr<VirtualClient> reconnect_watcher(CoreHarness& h) {
    auto watcher = h.open(ProtocolVersion::V5);
    watcher->send(connect_packet("watcher-crash", ProtocolVersion::V5, false, 3600));
    h.settle();
    CHECK(watcher->take<Connack>().session_present);
    return watcher;
  }
};

TEST_CASE("persistence: after a crash, a session that was connected counts as gone since the broker's "
          "last sign of life [MQTT-3.1.2-23] [MQTT-3.1.3-9]",
          "[persistence]") {
  CrashWhileConnected crash;
  crash.store.drop_unsynced();  // what the closing connections wrote after the crash
  crash.store.hold_writes(false);
  SECTION("down longer than the session expiry: the session is over and its will went out") {
    CoreHarness h({}, 2, &crash.store, crash.crashed_at + 20'000);
    auto watcher = crash.reconnect_watcher(h);
    CHECK(*watcher->take<Publish>().payload == "offline");
    CHECK_FALSE(crash.reconnect_car(h).session_present);
  }
  SECTION("down 3 s: the will is due 3 s after the restart, the session ends 8 s after it") {
    // The last mark was written at the crash here; a crash may come up to an interval after
    // it, so the vehicle counts as gone one interval after the mark.
    CoreHarness h({}, 2, &crash.store, crash.crashed_at + 3'000);
    auto watcher = crash.reconnect_watcher(h);
    h.advance(2'000);
    CHECK(watcher->received().empty());
    h.advance(1'000);
    CHECK(*watcher->take<Publish>().payload == "offline");
    h.advance(5'000);
    CHECK_FALSE(crash.reconnect_car(h).session_present);
  }
}

TEST_CASE("persistence: records written before the wall clock went back live no longer than their intervals "
          "[MQTT-3.3.2-6]",
          "[persistence]") {
  auto store = make_memory_store();
  {
    CoreHarness h({}, 2, store.get());
    h.advance(3600'000);  // the clock the records are written by runs an hour ahead
    auto car = h.connect("car-back", ProtocolVersion::V5, true, 30);
    subscribe(*car, "cmd", 1);
    car->drop();
    auto watcher = h.connect("watcher-back", ProtocolVersion::V5, true, 3600);
    subscribe(*watcher, "cmd", 1);
    watcher->drop();
    auto platform = h.connect("platform-back", ProtocolVersion::V5);
    Publish p = publish("cmd", "x", 1, 1, true);
    p.properties.message_expiry_interval = 8;
    platform->send(p);
    CHECK(platform->take<Ack>().packet_id == 1);
  }
  CoreHarness h({}, 2, store.get());  // the wall clock was set right meanwhile
  h.advance(5'000);
  auto watcher = h.open(ProtocolVersion::V5);
  watcher->send(connect_packet("watcher-back", ProtocolVersion::V5, false, 3600));
  CHECK(watcher->take<Connack>().session_present);
  CHECK(watcher->take<Publish>().properties.message_expiry_interval == 3u);  // 8 less the 5 waited
  auto fresh = h.connect("fresh-back", ProtocolVersion::V5);
  subscribe(*fresh, "cmd", 1);
  CHECK(fresh->take<Publish>().properties.message_expiry_interval == 3u);  // the retained copy
  h.advance(26'000);  // 31 s after the restart: the 30 s session is over
  auto car = h.open(ProtocolVersion::V5);
  car->send(connect_packet("car-back", ProtocolVersion::V5, false, 30));
  CHECK_FALSE(car->take<Connack>().session_present);
}
