// Session and routing semantics of the core, driven in memory (no sockets, fake time).
#include <algorithm>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "core/engine.hpp"
#include "support/core_harness.hpp"

using namespace broker;
using namespace broker::protocol;
using broker::test::CoreHarness;
using broker::test::VirtualClient;

namespace {

Subscribe subscribe(std::uint16_t id, const std::string& filter, std::uint8_t qos = 1,
                    std::uint32_t subscription_id = 0) {
  Subscribe s;
  s.packet_id = id;
  SubscribeEntry e;
  e.filter = filter;
  e.qos = qos;
  s.entries.push_back(e);
  if (subscription_id) s.properties.subscription_identifiers.push_back(subscription_id);
  return s;
}

Publish publish(const std::string& topic, const std::string& payload, std::uint8_t qos = 0,
                std::uint16_t id = 0, bool retain = false) {
  return broker::test::make_publish(topic, payload, qos, id, retain);
}

Ack ack(PacketType type, std::uint16_t id) {
  Ack a;
  a.type = type;
  a.packet_id = id;
  return a;
}

void subscribe_ok(VirtualClient& c, const std::string& filter, std::uint8_t qos = 1,
                  std::uint32_t subscription_id = 0) {
  c.send(subscribe(1, filter, qos, subscription_id));
  auto suback = c.take<Suback>();
  REQUIRE(suback.reasons.size() == 1);
  REQUIRE(suback.reasons[0] == static_cast<ReasonCode>(qos));
}

// Two client ids whose sessions live on different workers, so cross-worker batches run.
// A 3.1.1 vehicle coming back to its persistent session; the CONNACK is taken.
std::unique_ptr<VirtualClient> resume_v311(CoreHarness& h, const std::string& client_id) {
  auto back = h.open(ProtocolVersion::V311);
  Connect c;
  c.client_id = client_id;
  c.clean_start = false;
  back->send(c);
  CHECK(back->take<Connack>().session_present);
  return back;
}

std::pair<std::string, std::string> ids_on_two_workers(CoreHarness& h) {
  std::string a = "client-a";
  for (int i = 0;; ++i) {
    std::string b = "client-b" + std::to_string(i);
    if (h.engine().home_worker(a) != h.engine().home_worker(b)) return {a, b};
  }
}

}  // namespace

TEST_CASE("core: CONNACK advertises the broker's limits to a 5.0 client", "[core]") {
  CoreHarness h;
  auto c = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "limits";
  c->send(connect);
  auto connack = c->take<Connack>();
  CHECK(connack.reason == ReasonCode::Success);
  CHECK_FALSE(connack.session_present);
  CHECK(connack.properties.receive_maximum == std::optional<std::uint16_t>(128));
  CHECK(connack.properties.topic_alias_maximum == std::optional<std::uint16_t>(64));
  CHECK(connack.properties.maximum_packet_size == std::optional<std::uint32_t>(16u * 1024 * 1024));
}

TEST_CASE("core: a client is handed over to its client id's home worker", "[core]") {
  CoreHarness h;
  std::string id = "moves";
  unsigned home = h.engine().home_worker(id);
  auto c = h.open(ProtocolVersion::V311, home == 0 ? 1 : 0);
  Connect connect;
  connect.client_id = id;
  c->send(connect);
  CHECK(c->take<Connack>().reason == ReasonCode::Success);
  CHECK(c->worker() == home);
  CHECK(h.engine().worker(home).session_count() == 1);
}

TEST_CASE("core: a client that cannot move to its home worker is told the server is busy", "[core]") {
  // At the process's fd limit the socket cannot be copied for the move.
  CoreHarness h;
  std::string id = "stuck";
  unsigned home = h.engine().home_worker(id);
  for (auto version : {ProtocolVersion::V5, ProtocolVersion::V311}) {
    auto c = h.open(version, home == 0 ? 1 : 0);
    c->refuse_hand_over();
    Connect connect;
    connect.version = version;
    connect.client_id = id;
    c->send(connect);
    auto connack = c->take<Connack>();
    // 3.1.1 has no "busy": it hears 0x03, Server unavailable.
    CHECK(connack.reason ==
          (version == ProtocolVersion::V5 ? ReasonCode::ServerBusy : ReasonCode::ServerUnavailable));
    CHECK_FALSE(connack.session_present);
    CHECK(c->closed_by_broker());
    CHECK(c->worker() != home);
  }
  CHECK(h.engine().worker(home).session_count() == 0);
}

TEST_CASE("core: publish reaches a subscriber on another worker", "[core]") {
  CoreHarness h;
  auto [a, b] = ids_on_two_workers(h);
  auto sub = h.connect(a);
  auto pub = h.connect(b);
  subscribe_ok(*sub, "t/+", 1);
  pub->send(publish("t/1", "hello", 1, 7));
  auto puback = pub->take<Ack>();
  CHECK(puback.type == PacketType::Puback);
  CHECK(puback.packet_id == 7);
  CHECK(puback.reason == ReasonCode::Success);
  auto got = sub->take<Publish>();
  CHECK(got.topic == "t/1");
  CHECK(*got.payload == "hello");
  CHECK(got.qos == 1);
  CHECK(got.packet_id != 0);
}

TEST_CASE("core: v5 PUBACK says No matching subscribers when nobody listens", "[core]") {
  CoreHarness h;
  auto pub = h.connect("lonely");
  pub->send(publish("nobody/here", "x", 1, 3));
  CHECK(pub->take<Ack>().reason == ReasonCode::NoMatchingSubscribers);
}

TEST_CASE("core: overlapping subscriptions give one message with max QoS and all ids [MQTT-3.3.4-2]", "[core]") {
  CoreHarness h;
  auto sub = h.connect("overlap");
  subscribe_ok(*sub, "a/#", 0, 1);
  subscribe_ok(*sub, "a/b", 2, 2);
  auto pub = h.connect("overlap-pub");
  pub->send(publish("a/b", "m", 2, 1));
  auto got = sub->take<Publish>();
  CHECK(got.qos == 2);
  auto ids = got.properties.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::uint32_t>{1, 2});
  CHECK(sub->received().empty());
}

TEST_CASE("core: overlapping subscriptions that differ in Retain As Published get a copy each [MQTT-3.3.1-12]",
          "[core]") {
  CoreHarness h;
  auto sub = h.connect("rap-overlap");
  Subscribe keep = subscribe(1, "r/x", 1, 1);
  keep.entries[0].retain_as_published = true;
  sub->send(keep);
  sub->take<Suback>();
  subscribe_ok(*sub, "r/+", 0, 2);
  auto pub = h.connect("rap-pub");
  pub->send(publish("r/x", "state", 1, 1, true));
  pub->take<Ack>();
  std::map<bool, std::pair<std::uint8_t, std::vector<std::uint32_t>>> copies;  // retain -> qos, ids
  while (!sub->received().empty()) {
    auto p = sub->take<Publish>();
    copies[p.retain] = {p.qos, p.properties.subscription_identifiers};
    if (p.qos) sub->send(ack(PacketType::Puback, p.packet_id));
  }
  REQUIRE(copies.size() == 2);
  CHECK(copies[true] == std::pair<std::uint8_t, std::vector<std::uint32_t>>{1, {1}});
  CHECK(copies[false] == std::pair<std::uint8_t, std::vector<std::uint32_t>>{0, {2}});
  pub->send(publish("r/x", "live", 1, 2, false));  // not retained: one copy, RETAIN 0, both ids
  pub->take<Ack>();
  auto live = sub->take<Publish>();
  CHECK_FALSE(live.retain);
  CHECK(live.properties.subscription_identifiers.size() == 2);
  CHECK(sub->received().empty());
}

TEST_CASE("core: a 3.1.1 client resuming a session subscribed with Retain As Published gets live RETAIN 0 "
          "[MQTT-3.3.1-9]", "[core]") {
  CoreHarness h;
  auto unit = h.connect("rap-unit", ProtocolVersion::V5, true, 3600);
  Subscribe keep = subscribe(1, "r/#", 1);
  keep.entries[0].retain_as_published = true;
  unit->send(keep);
  unit->take<Suback>();
  unit->drop();
  auto old = resume_v311(h, "rap-unit");  // the same vehicle after a firmware downgrade
  auto pub = h.connect("rap-unit-pub");
  pub->send(publish("r/x", "state", 1, 1, true));
  pub->take<Ack>();
  CHECK_FALSE(old->take<Publish>().retain);
  auto fresh = h.open(ProtocolVersion::V311);  // a new subscription's retained copy keeps RETAIN 1
  Connect c;
  c.client_id = "rap-late";
  fresh->send(c);
  fresh->take<Connack>();
  fresh->send(subscribe(1, "r/#", 1));
  fresh->take<Suback>();
  CHECK(fresh->take<Publish>().retain);
}

TEST_CASE("core: No Local keeps a client's own messages from it [MQTT-3.8.3-3]", "[core]") {
  CoreHarness h;
  auto c = h.connect("self");
  Subscribe s = subscribe(1, "loop", 0);
  s.entries[0].no_local = true;
  c->send(s);
  c->take<Suback>();
  c->send(publish("loop", "x"));
  CHECK(c->received().empty());
}

TEST_CASE("core: QoS 2 inbound duplicate is routed once", "[core]") {
  CoreHarness h;
  auto sub = h.connect("q2-sub");
  subscribe_ok(*sub, "q2", 0);
  auto pub = h.connect("q2-pub");
  pub->send(publish("q2", "once", 2, 9));
  CHECK(pub->take<Ack>().type == PacketType::Pubrec);
  auto again = publish("q2", "once", 2, 9);
  again.dup = true;
  pub->send(again);
  CHECK(pub->take<Ack>().type == PacketType::Pubrec);
  pub->send(ack(PacketType::Pubrel, 9));
  auto comp = pub->take<Ack>();
  CHECK(comp.type == PacketType::Pubcomp);
  CHECK(comp.reason == ReasonCode::Success);
  CHECK(sub->take<Publish>().qos == 0);
  CHECK(sub->received().empty());
}

TEST_CASE("core: unacknowledged QoS 1 is resent with DUP on reconnect [MQTT-4.4.0-1]", "[core]") {
  CoreHarness h;
  auto sub = h.connect("resend", ProtocolVersion::V5, true, 3600);
  subscribe_ok(*sub, "r", 1);
  auto pub = h.connect("resend-pub");
  pub->send(publish("r", "m1", 1, 1));
  auto first = sub->take<Publish>();
  CHECK_FALSE(first.dup);
  sub->drop();
  auto again = h.open(ProtocolVersion::V5);
  Connect c;
  c.version = ProtocolVersion::V5;
  c.client_id = "resend";
  c.clean_start = false;
  c.properties.session_expiry_interval = 3600;
  again->send(c);
  CHECK(again->take<Connack>().session_present);
  auto resent = again->take<Publish>();
  CHECK(resent.dup);
  CHECK(resent.packet_id == first.packet_id);
  CHECK(*resent.payload == "m1");
}

TEST_CASE("core: messages to an offline session are queued and delivered in order", "[core]") {
  CoreHarness h;
  auto sub = h.connect("offline", ProtocolVersion::V311, false);
  subscribe_ok(*sub, "o", 1);
  sub->drop();
  auto pub = h.connect("offline-pub");
  for (int i = 0; i < 5; ++i) pub->send(publish("o", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  auto back = resume_v311(h, "offline");
  for (int i = 0; i < 5; ++i) CHECK(*back->take<Publish>().payload == std::to_string(i));
}

TEST_CASE("core: a live QoS 0 message does not overtake a queued one [MQTT-4.6.0-6]", "[core]") {
  Options o;
  o.limits.max_inflight = 1;
  CoreHarness h(o);
  auto sub = h.connect("q0-order", ProtocolVersion::V311, false);
  subscribe_ok(*sub, "o", 1);
  sub->drop();
  auto pub = h.connect("q0-order-pub");
  pub->send(publish("o", "m1", 1, 1));
  pub->send(publish("o", "m2", 1, 2));
  pub->send(publish("o", "z0"));  // queued offline, behind m2
  auto back = resume_v311(h, "q0-order");
  h.settle();
  pub->send(publish("o", "z1"));  // m2 and z0 still wait for the window of 1
  h.settle();
  std::vector<std::string> got;
  for (int round = 0; round < 10 && got.size() < 4; ++round) {
    while (!back->received().empty()) {
      auto p = back->take<Publish>();
      got.emplace_back(*p.payload);
      if (p.qos > 0) back->send(ack(PacketType::Puback, p.packet_id));
    }
    h.settle();
  }
  CHECK(got == std::vector<std::string>{"m1", "m2", "z0", "z1"});
}

TEST_CASE("core: a full offline queue drops the oldest by default", "[core]") {
  Options o;
  o.limits.max_queued_messages = 3;
  CoreHarness h(o);
  auto sub = h.connect("cap", ProtocolVersion::V311, false);
  subscribe_ok(*sub, "c", 1);
  sub->drop();
  auto pub = h.connect("cap-pub");
  for (int i = 0; i < 5; ++i) pub->send(publish("c", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  auto back = resume_v311(h, "cap");
  CHECK(*back->take<Publish>().payload == "2");
  CHECK(*back->take<Publish>().payload == "3");
  CHECK(*back->take<Publish>().payload == "4");
  CHECK(back->received().empty());
}

TEST_CASE("core: a full queue lets QoS 0 give way to QoS 1/2, under either policy", "[core]") {
  const auto policy = GENERATE(QueueOverflow::DropOldest, QueueOverflow::RefuseNewest);
  Options o;
  o.limits.max_queued_messages = 3;
  o.limits.queue_overflow = policy;
  CoreHarness h(o);
  auto sub = h.connect("mixed", ProtocolVersion::V311, false);
  subscribe_ok(*sub, "o", 1);
  sub->drop();
  auto pub = h.connect("mixed-pub");
  pub->send(publish("o", "a", 1, 1));
  pub->send(publish("o", "b"));        // QoS 0
  pub->send(publish("o", "c", 1, 2));  // full
  pub->send(publish("o", "d", 1, 3));  // b goes, not a
  pub->send(publish("o", "e"));        // no QoS 0 left to give way: e goes
  pub->send(publish("o", "f", 1, 4));  // now the policy decides between a and f
  auto back = resume_v311(h, "mixed");
  std::vector<std::string> got;
  while (!back->received().empty()) got.emplace_back(*back->take<Publish>().payload);
  CHECK(got == (policy == QueueOverflow::DropOldest ? std::vector<std::string>{"c", "d", "f"}
                                                    : std::vector<std::string>{"a", "c", "d"}));
}

TEST_CASE("core: the queue's byte bound counts properties, not only payloads", "[core]") {
  Options o;
  o.limits.max_queued_bytes = 1 << 20;
  CoreHarness h(o);
  auto sub = h.connect("props-cap", ProtocolVersion::V311, false);
  subscribe_ok(*sub, "p", 1);
  sub->drop();
  auto pub = h.connect("props-cap-pub", ProtocolVersion::V5);
  // Empty payloads, each with 20,000 empty user properties: 100 KB on the wire, several
  // times that held in memory.
  for (std::uint16_t i = 1; i <= 20; ++i) {
    Publish p = publish("p", "", 1, i);
    p.properties.user_properties.assign(20000, protocol::UserProperty{});
    pub->send(p);
  }
  auto back = resume_v311(h, "props-cap");
  std::size_t delivered = 0;
  while (!back->received().empty()) {
    back->take<Publish>();
    ++delivered;
  }
  CHECK(delivered >= 1);
  CHECK(delivered < 20);  // 1 MiB holds only a few of them
}

TEST_CASE("core: expired messages make room in a full offline queue, also under refuse_newest [MQTT-3.3.2-5]",
          "[core]") {
  for (QueueOverflow policy : {QueueOverflow::RefuseNewest, QueueOverflow::DropOldest}) {
    Options o;
    o.limits.max_queued_messages = 3;
    o.limits.queue_overflow = policy;
    o.message_ttl_rules.push_back(TtlRule{"v/poi", 2});
    CoreHarness h(o);
    h.advance(61000);  // the periodic purge just ran: what follows is up to the full queue
    auto sub = h.connect("ttl-cap", ProtocolVersion::V311, false);
    subscribe_ok(*sub, "v/#", 1);
    sub->drop();
    auto pub = h.connect("ttl-cap-pub");
    for (std::uint16_t i = 1; i <= 3; ++i) pub->send(publish("v/poi", "poi", 1, i));
    h.advance(3000);  // the POIs expire
    for (std::uint16_t i = 0; i < 3; ++i)
      pub->send(publish("v/cmd", std::to_string(i), 1, static_cast<std::uint16_t>(i + 10)));
    auto back = resume_v311(h, "ttl-cap");
    for (int i = 0; i < 3; ++i) CHECK(*back->take<Publish>().payload == std::to_string(i));
    CHECK(back->received().empty());
  }
}

TEST_CASE("core: an empty queue takes a message larger than its byte bound, under either policy", "[core]") {
  for (QueueOverflow policy : {QueueOverflow::RefuseNewest, QueueOverflow::DropOldest}) {
    Options o;
    o.limits.max_queued_bytes = 1000;
    o.limits.queue_overflow = policy;
    CoreHarness h(o);
    auto online = h.connect("big-online");
    subscribe_ok(*online, "cfg", 1);
    auto offline = h.connect("big-offline", ProtocolVersion::V311, false);
    subscribe_ok(*offline, "cfg", 1);
    offline->drop();
    auto pub = h.connect("big-pub");
    pub->send(publish("cfg", std::string(5000, 'x'), 1, 1));
    pub->send(publish("cfg", std::string(5000, 'y'), 1, 2));
    CHECK(online->take<Publish>().payload->size() == 5000);
    auto back = resume_v311(h, "big-offline");
    // One at a time: the queue held one; which one is the policy's choice.
    auto got = back->take<Publish>();
    CHECK(std::string(*got.payload)[0] == (policy == QueueOverflow::RefuseNewest ? 'x' : 'y'));
    CHECK(back->received().empty());
  }
}

namespace {

// A harness whose sessions queue at most 4,000 bytes under `policy`, with the offline 3.1.1
// session `car` subscribed to v/# at QoS 1.
std::unique_ptr<CoreHarness> offline_car_with_small_queue(QueueOverflow policy, const std::string& car,
                                                          std::uint32_t max_messages = 1000) {
  Options o;
  o.limits.max_queued_bytes = 4000;
  o.limits.max_queued_messages = max_messages;
  o.limits.queue_overflow = policy;
  auto h = std::make_unique<CoreHarness>(o);
  auto c = h->connect(car, ProtocolVersion::V311, false);
  subscribe_ok(*c, "v/#", 1);
  c->drop();
  return h;
}

}  // namespace

TEST_CASE("core: a message larger than the queue's byte bound waits beside what is queued; a second one needs the first gone",
          "[core]") {
  // An offline vehicle is sent commands, a configuration file larger than its queue's byte
  // bound, more commands, then a second file.
  for (QueueOverflow policy : {QueueOverflow::RefuseNewest, QueueOverflow::DropOldest}) {
    CAPTURE(policy == QueueOverflow::DropOldest);
    auto harness = offline_car_with_small_queue(policy, "file-car");
    CoreHarness& h = *harness;
    auto pub = h.connect("file-pub");
    std::uint16_t id = 1;
    auto send = [&](const std::string& topic, const std::string& payload) {
      pub->send(publish(topic, payload, 1, id++));
      CHECK(pub->take<Ack>().type == PacketType::Puback);
    };
    for (const char* c : {"c1", "c2", "c3"}) send("v/cmd", c);
    send("v/file", std::string(5000, 'x'));
    for (const char* c : {"c4", "c5"}) send("v/cmd", c);
    send("v/file", std::string(6000, 'y'));
    auto back = resume_v311(h, "file-car");
    std::vector<std::string> got;
    while (!back->received().empty()) {
      auto p = back->take<Publish>();
      const std::string payload(*p.payload);
      got.push_back(payload.size() > 100 ? payload.substr(0, 1) + std::to_string(payload.size()) : payload);
      back->send(ack(PacketType::Puback, p.packet_id));
      h.settle();
    }
    CHECK(got == (policy == QueueOverflow::RefuseNewest
                      ? std::vector<std::string>{"c1", "c2", "c3", "x5000", "c4", "c5"}
                      : std::vector<std::string>{"c1", "c2", "c3", "c4", "c5", "y6000"}));
  }
}

TEST_CASE("core: a message larger than the queue's byte bound at its front is not pushed out by the ones after it",
          "[core]") {
  for (QueueOverflow policy : {QueueOverflow::RefuseNewest, QueueOverflow::DropOldest}) {
    CAPTURE(policy == QueueOverflow::DropOldest);
    auto harness = offline_car_with_small_queue(policy, "front-car", 5);
    CoreHarness& h = *harness;
    auto pub = h.connect("front-pub");
    pub->send(publish("v/file", std::string(5000, 'x'), 1, 1));
    // Past both the byte and the message bound of the others.
    for (std::uint16_t i = 0; i < 12; ++i)
      pub->send(publish("v/cmd", "c" + std::to_string(i) + "|" + std::string(600, '.'), 1, static_cast<std::uint16_t>(i + 2)));
    auto back = resume_v311(h, "front-car");
    std::vector<std::string> got;
    while (!back->received().empty()) {
      auto p = back->take<Publish>();
      const std::string payload(*p.payload);
      got.push_back(payload[0] == 'x' ? "file" : payload.substr(0, payload.find('|')));
      back->send(ack(PacketType::Puback, p.packet_id));
      h.settle();
    }
    REQUIRE(got.size() >= 2);
    CHECK(got.front() == "file");
    CHECK(got.size() <= 6);  // the file and at most max_queued_messages others
    CHECK(got.back() == (policy == QueueOverflow::DropOldest ? "c11" : std::string("c") + std::to_string(got.size() - 2)));
  }
}

TEST_CASE("core: a Message Expiry Interval of 0 reaches online subscribers only [MQTT-3.3.2-5]", "[core]") {
  CoreHarness h;
  auto online = h.connect("zero-online");
  subscribe_ok(*online, "z", 1);
  auto offline = h.connect("zero-offline", ProtocolVersion::V5, false, 3600);
  subscribe_ok(*offline, "z", 1);
  offline->drop();
  auto pub = h.connect("zero-pub");
  auto p = publish("z", "now", 1, 1, true);
  p.properties.message_expiry_interval = 0;
  pub->send(p);
  auto got = online->take<Publish>();
  CHECK(*got.payload == "now");
  CHECK(got.properties.message_expiry_interval == std::optional<std::uint32_t>(0));  // [MQTT-3.3.2-6]
  h.advance(1);  // back at once: still nothing, however short the absence
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "zero-offline";
  connect.clean_start = false;
  connect.properties.session_expiry_interval = 3600;
  auto back = h.open(ProtocolVersion::V5);
  back->send(connect);
  CHECK(back->take<Connack>().session_present);
  CHECK(back->received().empty());  // nothing kept for later, retained copy included
  subscribe_ok(*back, "z", 1);
  CHECK(back->received().empty());
}

TEST_CASE("core: the client's Receive Maximum bounds messages in flight [MQTT-3.3.4-7]", "[core]") {
  CoreHarness h;
  auto sub = h.open(ProtocolVersion::V5);
  Connect c;
  c.version = ProtocolVersion::V5;
  c.client_id = "window";
  c.properties.receive_maximum = 2;
  sub->send(c);
  sub->take<Connack>();
  subscribe_ok(*sub, "w", 1);
  auto pub = h.connect("window-pub");
  for (int i = 0; i < 4; ++i) pub->send(publish("w", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  auto m0 = sub->take<Publish>();
  auto m1 = sub->take<Publish>();
  CHECK(sub->received().empty());
  sub->send(ack(PacketType::Puback, m0.packet_id));
  CHECK(*sub->take<Publish>().payload == "2");
  sub->send(ack(PacketType::Puback, m1.packet_id));
  CHECK(*sub->take<Publish>().payload == "3");
}

TEST_CASE("core: retained message is delivered on subscribe and cleared by an empty one", "[core]") {
  CoreHarness h;
  auto pub = h.connect("ret-pub");
  pub->send(publish("ret/a", "kept", 1, 1, true));
  pub->take<Ack>();
  auto sub = h.connect("ret-sub");
  subscribe_ok(*sub, "ret/#", 1);
  auto got = sub->take<Publish>();
  CHECK(got.retain);
  CHECK(*got.payload == "kept");
  pub->send(publish("ret/a", "", 0, 0, true));
  sub->take<Publish>();  // the empty message itself reaches current subscribers
  auto late = h.connect("ret-late");
  subscribe_ok(*late, "ret/#", 1);
  CHECK(late->received().empty());
}

TEST_CASE("core: past max_retained_messages a 5.0 publisher hears Quota exceeded for a new topic", "[core]") {
  Options o;
  o.limits.max_retained_messages = 2;
  CoreHarness h(o);
  auto sub = h.connect("quota-sub");
  subscribe_ok(*sub, "q/#", 1);
  auto pub = h.connect("quota-pub");
  const auto puback = [&](const std::string& topic, const std::string& payload, std::uint16_t id) {
    pub->send(publish(topic, payload, 1, id, true));
    return pub->take<Ack>().reason;
  };
  CHECK(puback("q/a", "1", 1) == ReasonCode::Success);
  CHECK(puback("q/b", "1", 2) == ReasonCode::Success);
  CHECK(puback("q/c", "1", 3) == ReasonCode::QuotaExceeded);  // refused whole: not forwarded
  CHECK(puback("q/a", "2", 4) == ReasonCode::Success);        // a replacement fits
  CHECK(puback("q/b", "", 5) == ReasonCode::Success);         // a clear frees a place
  CHECK(puback("q/c", "2", 6) == ReasonCode::Success);
  std::vector<std::string> live;
  while (!sub->received().empty()) {
    auto p = sub->take<Publish>();
    live.push_back(p.topic + "=" + std::string(*p.payload));
    sub->send(ack(PacketType::Puback, p.packet_id));
  }
  CHECK(live == std::vector<std::string>{"q/a=1", "q/b=1", "q/a=2", "q/b=", "q/c=2"});
  // 3.1.1 has no failure code: its message goes to subscribers, not into the full store.
  auto old = h.connect("quota-311", ProtocolVersion::V311);
  old->send(publish("q/d", "1", 1, 1, true));
  CHECK(old->take<Ack>().reason == ReasonCode::Success);
  CHECK(sub->take<Publish>().topic == "q/d");
  auto late = h.connect("quota-late");
  subscribe_ok(*late, "q/#", 0);
  std::set<std::string> retained;
  while (!late->received().empty()) retained.insert(late->take<Publish>().topic);
  CHECK(retained == std::set<std::string>{"q/a", "q/c"});
}

TEST_CASE("core: past max_retained_bytes a 5.0 publisher hears Quota exceeded, and the retained value stays",
          "[core]") {
  Options o;
  o.limits.max_retained_bytes = 1000;
  CoreHarness h(o);
  auto pub = h.connect("bytes-pub");
  const auto puback = [&](const std::string& topic, std::size_t size, std::uint16_t id) {
    pub->send(publish(topic, std::string(size, 'x'), 1, id, true));
    return pub->take<Ack>().reason;
  };
  // Kept, though no one is subscribed yet: 0x10 No matching subscribers.
  CHECK(puback("cfg/a", 600, 1) == ReasonCode::NoMatchingSubscribers);
  CHECK(puback("cfg/b", 600, 2) == ReasonCode::QuotaExceeded);  // 1,200 bytes in all
  CHECK(puback("cfg/a", 1200, 3) == ReasonCode::QuotaExceeded);  // a replacement past it too
  CHECK(puback("cfg/a", 900, 4) == ReasonCode::NoMatchingSubscribers);
  CHECK(h.engine().retained().bytes() == 900 + 5 + 9);  // payload, topic, publisher's id
  auto late = h.connect("bytes-late");
  subscribe_ok(*late, "cfg/#", 0);
  auto got = late->take<Publish>();
  CHECK(got.topic == "cfg/a");
  CHECK(got.payload->size() == 900);
  CHECK(late->received().empty());
}

TEST_CASE("core: retain handling 2 sends no retained messages [MQTT-3.3.1-11]", "[core]") {
  CoreHarness h;
  auto pub = h.connect("rh-pub");
  pub->send(publish("rh", "kept", 0, 0, true));
  auto sub = h.connect("rh-sub");
  Subscribe s = subscribe(1, "rh", 0);
  s.entries[0].retain_handling = 2;
  sub->send(s);
  sub->take<Suback>();
  CHECK(sub->received().empty());
}

TEST_CASE("core: takeover closes the old connection with 0x8E [MQTT-3.1.4-3]", "[core]") {
  CoreHarness h;
  auto first = h.connect("twin");
  auto second = h.connect("twin");
  auto d = first->take<Disconnect>();
  CHECK(d.reason == ReasonCode::SessionTakenOver);
  CHECK(first->closed_by_broker());
}

TEST_CASE("core: keep alive timeout closes and publishes the will [MQTT-3.1.2-24]", "[core]") {
  CoreHarness h;
  auto watcher = h.connect("watcher");
  subscribe_ok(*watcher, "will/#", 0);
  auto c = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "sleepy";
  connect.keep_alive = 2;
  Will will;
  will.topic = "will/sleepy";
  will.payload = Payload::copy_of("gone");
  connect.will = will;
  c->send(connect);
  c->take<Connack>();
  h.advance(2000);
  CHECK(c->received().empty());
  watcher->send(Pingreq{});  // the watcher stays alive
  watcher->take<Pingresp>();
  h.advance(1100);
  CHECK(c->take<Disconnect>().reason == ReasonCode::KeepAliveTimeout);
  CHECK(*watcher->take<Publish>().payload == "gone");
}

TEST_CASE("core: a normal DISCONNECT discards the will [MQTT-3.14.4-3]", "[core]") {
  CoreHarness h;
  auto watcher = h.connect("w2");
  subscribe_ok(*watcher, "will/#", 0);
  auto c = h.open(ProtocolVersion::V311);
  Connect connect;
  connect.client_id = "polite";
  Will will;
  will.topic = "will/polite";
  will.payload = Payload::copy_of("gone");
  connect.will = will;
  c->send(connect);
  c->take<Connack>();
  c->send(Disconnect{});
  CHECK(watcher->received().empty());
}

TEST_CASE("core: will delay publishes after the delay unless the client returns [MQTT-3.1.3-9]", "[core]") {
  CoreHarness h;
  auto watcher = h.connect("w3");
  subscribe_ok(*watcher, "will/#", 0);
  auto make = [&] {
    auto c = h.open(ProtocolVersion::V5);
    Connect connect;
    connect.version = ProtocolVersion::V5;
    connect.client_id = "delayed";
    connect.clean_start = false;
    connect.properties.session_expiry_interval = 100;
    Will will;
    will.topic = "will/delayed";
    will.payload = Payload::copy_of("late");
    will.properties.will_delay_interval = 5;
    connect.will = will;
    c->send(connect);
    c->take<Connack>();
    return c;
  };
  auto c = make();
  c->drop();
  h.advance(2000);
  CHECK(watcher->received().empty());
  auto back = make();  // returns in time: the will is cancelled
  h.advance(6000);
  CHECK(watcher->received().empty());
  watcher->send(Pingreq{});
  watcher->take<Pingresp>();
  back->drop();
  h.advance(5500);
  CHECK(*watcher->take<Publish>().payload == "late");
}

TEST_CASE("core: a session expires after its interval [MQTT-3.1.2-23]", "[core]") {
  CoreHarness h;
  auto c = h.connect("brief", ProtocolVersion::V5, false, 2);
  subscribe_ok(*c, "x", 0);
  c->drop();
  h.advance(1000);
  auto c2 = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "brief";
  connect.clean_start = false;
  connect.properties.session_expiry_interval = 2;
  c2->send(connect);
  CHECK(c2->take<Connack>().session_present);
  c2->drop();
  h.advance(2500);
  auto c3 = h.open(ProtocolVersion::V5);
  c3->send(connect);
  CHECK_FALSE(c3->take<Connack>().session_present);
  CHECK(h.engine().index().subscription_count() == 0);
}

TEST_CASE("core: an expired message is not delivered to a reconnecting session [MQTT-3.3.2-5]", "[core]") {
  CoreHarness h;
  auto sub = h.connect("exp", ProtocolVersion::V5, false, 3600);
  subscribe_ok(*sub, "e", 1);
  sub->drop();
  auto pub = h.connect("exp-pub");
  auto p = publish("e", "short", 1, 1);
  p.properties.message_expiry_interval = 1;
  pub->send(p);
  auto p2 = publish("e", "long", 1, 2);
  p2.properties.message_expiry_interval = 100;
  pub->send(p2);
  h.advance(2000);
  auto back = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "exp";
  connect.clean_start = false;
  connect.properties.session_expiry_interval = 3600;
  back->send(connect);
  back->take<Connack>();
  auto got = back->take<Publish>();
  CHECK(*got.payload == "long");
  // [MQTT-3.3.2-6] forwarded with the interval that remains.
  CHECK(got.properties.message_expiry_interval == std::optional<std::uint32_t>(98));
  CHECK(back->received().empty());
}

TEST_CASE("core: shared subscription spreads messages and hands a leaver's ones on", "[core]") {
  CoreHarness h;
  auto m1 = h.connect("member-1", ProtocolVersion::V5, false, 3600);
  auto m2 = h.connect("member-2");
  subscribe_ok(*m1, "$share/g/jobs/#", 1);
  subscribe_ok(*m2, "$share/g/jobs/#", 1);
  auto pub = h.connect("boss");
  for (int i = 0; i < 4; ++i) pub->send(publish("jobs/x", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  std::size_t n1 = m1->received().size(), n2 = m2->received().size();
  CHECK(n1 + n2 == 4);
  CHECK(n1 == 2);
  // member-1 leaves with its messages unacknowledged: they go to member-2.
  m1->drop();
  CHECK(m2->received().size() == 4);
}

TEST_CASE("core: a member that unsubscribed then leaves hands the group's messages on (4.8.2)", "[core]") {
  Options o;
  o.limits.max_inflight = 1;  // the member's other messages wait in its queue
  CoreHarness h(o);
  auto a = h.connect("member-a");
  auto b = h.connect("member-b");
  subscribe_ok(*a, "$share/g/jobs", 1);
  subscribe_ok(*b, "$share/g/jobs", 1);
  auto pub = h.connect("boss");
  const int n = 6;
  for (int i = 0; i < n; ++i) pub->send(publish("jobs", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  h.settle();
  std::set<std::string> at_b;
  auto take_b = [&] {
    while (!b->received().empty()) {
      auto p = b->take<Publish>();
      at_b.insert(std::string(*p.payload));
      b->send(ack(PacketType::Puback, p.packet_id));
    }
    h.settle();
  };
  take_b();
  take_b();
  take_b();
  CHECK(a->received().size() == 1);  // one in flight, two queued, none acknowledged
  Unsubscribe u;
  u.packet_id = 7;
  u.filters.push_back("$share/g/jobs");
  a->send(u);
  a->drop();  // Session Expiry 0: its session ends
  h.settle();
  for (int round = 0; round < 5; ++round) take_b();
  CHECK(at_b.size() == n);
}

TEST_CASE("core: a shared message handed to a member that leaves before it arrives goes to another", "[core]") {
  CoreHarness h;
  // B's messages go to A on the other worker; A leaves while they are on their way.
  auto other_worker = [&](unsigned worker) {
    for (int i = 0;; ++i) {
      std::string id = "member-a-" + std::to_string(i);
      if (h.engine().home_worker(id) != worker) return id;
    }
  };
  auto b = h.connect("member-b", ProtocolVersion::V5, false, 3600);
  auto a = h.connect(other_worker(h.engine().home_worker("member-b")));
  auto c = h.connect("member-c");
  for (auto* m : {b.get(), a.get(), c.get()}) subscribe_ok(*m, "$share/g/jobs", 1);
  auto pub = h.connect("boss");
  const int n = 9;
  for (int i = 0; i < n; ++i) pub->send(publish("jobs", std::to_string(i), 1, static_cast<std::uint16_t>(i + 1)));
  CHECK(b->received().size() == 3);
  h.hold_settling(true);
  b->drop();  // persistent: its unacknowledged messages go to A and C
  a->drop();  // Session Expiry 0: its session ends before B's messages reach it
  h.hold_settling(false);
  h.settle();
  std::set<std::string> at_c;
  for (const auto& packet : c->received())
    if (auto* p = std::get_if<Publish>(&packet)) at_c.insert(std::string(*p->payload));
  CHECK(at_c.size() == n);
}

TEST_CASE("core: inbound topic alias is resolved; an alias over the maximum is refused [MQTT-3.3.2-9]", "[core]") {
  CoreHarness h;
  auto sub = h.connect("alias-sub");
  subscribe_ok(*sub, "long/topic/name", 0);
  auto pub = h.connect("alias-pub");
  auto first = publish("long/topic/name", "1");
  first.properties.topic_alias = 3;
  pub->send(first);
  auto second = publish("", "2");
  second.properties.topic_alias = 3;
  pub->send(second);
  CHECK(sub->take<Publish>().topic == "long/topic/name");
  CHECK(*sub->take<Publish>().payload == "2");
  auto bad = publish("x", "3");
  bad.properties.topic_alias = 65;
  pub->send(bad);
  CHECK(pub->take<Disconnect>().reason == ReasonCode::TopicAliasInvalid);
  CHECK(pub->closed_by_broker());
}

TEST_CASE("core: 3.1.1 empty client id without clean session gets return code 2 [MQTT-3.1.3-8]", "[core]") {
  CoreHarness h;
  auto c = h.open(ProtocolVersion::V311);
  Connect connect;
  connect.clean_start = false;
  c->send(connect);
  CHECK(c->take<Connack>().reason == ReasonCode::ClientIdentifierNotValid);
  CHECK(c->closed_by_broker());
}

TEST_CASE("core: 5.0 empty client id gets an assigned one [MQTT-3.2.2-16]", "[core]") {
  CoreHarness h;
  auto c = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  c->send(connect);
  auto connack = c->take<Connack>();
  CHECK(connack.reason == ReasonCode::Success);
  REQUIRE(connack.properties.assigned_client_identifier);
  CHECK_FALSE(connack.properties.assigned_client_identifier->empty());
}

TEST_CASE("core: the first packet must be CONNECT [MQTT-3.1.0-1]", "[core]") {
  CoreHarness h;
  auto c = h.open(ProtocolVersion::V311);
  c->send(Pingreq{});
  CHECK(c->received().empty());
  CHECK(c->closed_by_broker());
}

TEST_CASE("core: a second CONNECT is a protocol error [MQTT-3.1.0-2]", "[core]") {
  CoreHarness h;
  auto c = h.connect("twice");
  Connect again;
  again.version = ProtocolVersion::V5;
  again.client_id = "twice";
  c->send(again);
  CHECK(c->take<Disconnect>().reason == ReasonCode::ProtocolError);
  CHECK(c->closed_by_broker());
}

TEST_CASE("core: a worker holds a bounded amount of bytes before CONNECT", "[core]") {
  // Unfinished CONNECTs of ~195 KB each: past the worker's 64 MiB only small CONNECTs go on.
  CoreHarness h;
  Connect big;
  big.client_id = "big";
  big.username = std::string(65000, 'u');
  big.password = std::string(65000, 'p');
  Will will;
  will.topic = "w";
  will.payload = Payload::copy_of(std::string(65000, 'x'));
  big.will = will;
  std::string bytes;
  REQUIRE(protocol::encode(big, ProtocolVersion::V311, bytes));
  const std::string unfinished = bytes.substr(0, bytes.size() - 1);
  std::vector<std::unique_ptr<VirtualClient>> stalled;
  for (int i = 0; i < 400; ++i) {
    stalled.push_back(h.open(ProtocolVersion::V311));
    stalled.back()->send_raw(unfinished);
  }
  std::size_t refused = 0;
  for (auto& c : stalled) refused += c->closed_by_broker() ? 1 : 0;
  CHECK(refused >= 400 - (64u << 20) / unfinished.size());
  CHECK(refused < 400 - (60u << 20) / unfinished.size());
  // A small CONNECT is still taken.
  auto small = h.open(ProtocolVersion::V311);
  Connect connect;
  connect.client_id = "small";
  small->send(connect);
  CHECK(small->take<Connack>().reason == ReasonCode::Success);
  // Closed connections give their bytes back: a big CONNECT goes through again.
  for (auto& c : stalled) c->drop();
  stalled.clear();
  auto again = h.open(ProtocolVersion::V311);
  again->send_raw(bytes);
  CHECK(again->take<Connack>().reason == ReasonCode::Success);
}

TEST_CASE("core: a worker holds a bounded amount of bytes of unfinished packets", "[core]") {
  // Clients that send 12 MB of a 15 MB PUBLISH and stop: past the worker's 128 MiB, one that
  // holds a large unfinished packet is disconnected (0x97) instead of growing the broker.
  CoreHarness h;
  std::string head(1, '\x30');
  const std::uint32_t remaining = 15u << 20;  // under max_packet_size (16 MiB)
  for (std::uint32_t v = remaining; v != 0; v >>= 7) head.push_back(static_cast<char>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0)));
  const std::string unfinished = head + std::string("\0\3t/x\0", 6) + std::string(12u << 20, 'x');
  std::vector<std::unique_ptr<VirtualClient>> clients;
  std::size_t refused = 0;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(h.connect("big-" + std::to_string(i), ProtocolVersion::V5));
    if (clients.back()->worker() != clients.front()->worker()) continue;  // one worker's budget
    clients.back()->send_raw(unfinished);
    if (clients.back()->closed_by_broker()) {
      CHECK(clients.back()->take<Disconnect>().reason == ReasonCode::QuotaExceeded);
      ++refused;
    }
  }
  CHECK(refused > 0);
  // Small packets still go: a PING on a connection that holds nothing unfinished.
  auto small = h.connect("small", ProtocolVersion::V5);
  small->send(Pingreq{});
  small->take<Pingresp>();
}

TEST_CASE("core: a CONNECT must be complete within the connect timeout of the accept", "[core]") {
  // One byte every 3 s would otherwise hold the socket (and its buffer) for ever.
  CoreHarness h;
  auto c = h.open(ProtocolVersion::V311);
  std::string bytes;
  REQUIRE(protocol::encode(Connect{}, ProtocolVersion::V311, bytes));
  for (std::size_t i = 0; i + 1 < bytes.size() && !c->closed_by_broker(); ++i) {
    c->send_raw(bytes.substr(i, 1));
    h.advance(3000);
  }
  CHECK(c->closed_by_broker());
  CHECK(c->received().empty());
}

TEST_CASE("core: a CONNECT larger than limits.max_connect_packet_size is refused", "[core]") {
  Options o;
  o.limits.max_connect_packet_size = 1024;
  CoreHarness h(o);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "big-will";
  Will will;
  will.topic = "w";
  will.payload = Payload::copy_of(std::string(2000, 'x'));
  connect.will = will;
  auto big = h.open(ProtocolVersion::V5);
  big->send(connect);
  CHECK(big->take<Connack>().reason == ReasonCode::PacketTooLarge);
  CHECK(big->closed_by_broker());
  // Within the bound it connects, and then the full max_packet_size applies.
  connect.will->payload = Payload::copy_of(std::string(500, 'x'));
  auto fine = h.open(ProtocolVersion::V5);
  fine->send(connect);
  CHECK(fine->take<Connack>().reason == ReasonCode::Success);
  fine->send(publish("t", std::string(4000, 'p'), 0));
  fine->send(Pingreq{});
  fine->take<Pingresp>();
  CHECK_FALSE(fine->closed_by_broker());
}

TEST_CASE("core: limits.max_keep_alive refuses a 3.1.1 keep alive above it, or none, without a CONNACK [MQTT-3.2.2-6]",
          "[core]") {
  Options o;
  o.limits.max_keep_alive = 60;
  CoreHarness h(o);
  for (std::uint16_t keep_alive : {std::uint16_t{0}, std::uint16_t{61}}) {
    auto c = h.open(ProtocolVersion::V311);
    Connect connect;
    connect.client_id = "ka-" + std::to_string(keep_alive);
    connect.keep_alive = keep_alive;
    c->send(connect);
    CHECK(c->received().empty());  // no 3.1.1 return code says why
    CHECK(c->closed_by_broker());
  }
  auto ok = h.open(ProtocolVersion::V311);
  Connect connect;
  connect.client_id = "ka-60";
  connect.keep_alive = 60;
  ok->send(connect);
  CHECK(ok->take<Connack>().reason == ReasonCode::Success);
}

TEST_CASE("core: a 3.1.1 will the broker cannot take closes without a CONNACK [MQTT-3.2.2-6]", "[core]") {
  // No 3.1.1 return code says "QoS or retain not supported": 0x03 (service unavailable) would
  // be false, so the client is closed without one.
  Options o;
  o.limits.max_qos = 1;
  o.limits.retain_available = false;
  CoreHarness h(o);
  for (bool retain : {false, true}) {
    auto c = h.open(ProtocolVersion::V311);
    Connect connect;
    connect.client_id = retain ? "will-retain" : "will-qos2";
    Will will;
    will.topic = "w";
    will.qos = retain ? 0 : 2;
    will.retain = retain;
    connect.will = will;
    c->send(connect);
    CHECK(c->received().empty());
    CHECK(c->closed_by_broker());
  }
  // A 5.0 client hears why.
  auto v5 = h.open(ProtocolVersion::V5);
  Connect connect;
  connect.version = ProtocolVersion::V5;
  connect.client_id = "will-qos2-v5";
  Will will;
  will.topic = "w";
  will.qos = 2;
  connect.will = will;
  v5->send(connect);
  CHECK(v5->take<Connack>().reason == ReasonCode::QosNotSupported);
}

TEST_CASE("core: a client that does not read its answers is not read until they drain", "[core]") {
  CoreHarness h;
  auto c = h.connect("deaf", ProtocolVersion::V311);
  c->set_pending_bytes(2 * 1024 * 1024);  // over max_pending_output_bytes, and it reads nothing
  c->send(Pingreq{});
  c->send(Pingreq{});
  c->send(Pingreq{});
  CHECK(c->received().size() == 1);  // the first was answered; then the broker stopped reading
  c->set_pending_bytes(0);            // it read everything
  h.advance(10);                      // a loop turn
  CHECK(c->received().size() == 3);
}

TEST_CASE("core: every retained message a subscription matches arrives, past the queue bounds [MQTT-3.3.1-9]",
          "[core]") {
  Options o;
  o.limits.max_queued_messages = 4;
  o.limits.max_inflight = 2;
  CoreHarness h(o);
  auto pub = h.connect("snap-pub");
  // 200: more than the queue takes even while its subscriber holds its publishers (16 x 4).
  for (int i = 0; i < 200; ++i) {
    pub->send(publish("snap/" + std::to_string(i), "v" + std::to_string(i), 1,
                      static_cast<std::uint16_t>(i + 1), true));
    pub->take<Ack>();
  }
  auto sub = h.connect("snap-sub");
  subscribe_ok(*sub, "snap/+", 1);
  std::set<std::string> seen;
  while (!sub->received().empty()) {
    auto p = sub->take<Publish>();
    CHECK(p.retain);
    seen.insert(p.topic);
    sub->send(ack(PacketType::Puback, p.packet_id));
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("core: a retained backlog waits for the client's output; live messages wait behind it", "[core]") {
  Options o;
  o.limits.max_queued_messages = 4;
  o.limits.max_pending_output_bytes = 1000;
  CoreHarness h(o);
  auto pub = h.connect("bl-pub");
  for (int i = 0; i < 20; ++i) pub->send(publish("bl/" + std::to_string(i), "old", 0, 0, true));
  auto sub = h.connect("bl-sub");
  sub->set_pending_bytes(600);  // over half of max_pending_output_bytes: it does not read
  subscribe_ok(*sub, "bl/+", 0);
  CHECK(sub->received().empty());  // all twenty wait
  pub->send(publish("bl/7", "new", 0, 0, true));   // replaces one that waits
  pub->send(publish("bl/3", "live", 0, 0, false));  // not retained: the old bl/3 stays
  CHECK(sub->received().empty());  // both wait behind the snapshot
  sub->set_pending_bytes(0);       // it read everything
  h.advance(10);                   // a loop turn
  std::vector<std::string> got;
  while (!sub->received().empty()) {
    auto p = sub->take<Publish>();
    got.push_back(p.topic + "=" + std::string(*p.payload));
  }
  REQUIRE(got.size() == 21);  // 19 old (bl/7's old value is skipped), then the two live ones
  CHECK(std::count(got.begin(), got.end(), "bl/7=old") == 0);
  CHECK(got[19] == "bl/7=new");
  CHECK(got[20] == "bl/3=live");
  CHECK(std::find(got.begin(), got.end(), "bl/3=old") < got.end() - 2);
}

TEST_CASE("core: a snapshot ends on each topic's latest retained value when live updates overflow its backlog",
          "[core]") {
  Options o;
  o.limits.max_queued_messages = 4;  // live messages behind a backlog: at most 16 x 4
  o.limits.max_pending_output_bytes = 1000;
  CoreHarness h(o);
  auto pub = h.connect("dr-pub");
  const auto retain_all = [&](const std::string& value) {
    for (int i = 0; i < 20; ++i) pub->send(publish("dr/" + std::to_string(i), value, 0, 0, true));
  };
  retain_all("old");
  auto sub = h.connect("dr-sub");
  sub->set_pending_bytes(600);  // it does not read: the snapshot waits
  subscribe_ok(*sub, "dr/+", 0);
  retain_all("v1");  // replaces every snapshot entry; the live copies wait behind the backlog
  for (int i = 0; i < 50; ++i) pub->send(publish("dr/noise", "n", 0, 0, false));
  retain_all("v2");  // past the bound: these live copies are dropped
  for (int i = 0; i < 5; ++i) pub->send(publish("dr/" + std::to_string(i), "", 0, 0, true));  // and these clears
  sub->set_pending_bytes(0);
  std::map<std::string, std::string> last;
  for (int turn = 0; turn < 50; ++turn) {
    h.advance(10);
    while (!sub->received().empty()) {
      auto p = sub->take<Publish>();
      last[p.topic] = std::string(*p.payload);
    }
  }
  for (int i = 0; i < 20; ++i) CHECK(last["dr/" + std::to_string(i)] == (i < 5 ? "" : "v2"));
}

namespace {
// A client that does not read (its output is past half of max_pending_output_bytes = 1000):
// the retained messages its SUBSCRIBEs match wait in its backlog.
std::unique_ptr<VirtualClient> stalled_subscriber(CoreHarness& h, const std::string& id) {
  auto pub = h.connect(id + "-pub");
  for (int i = 0; i < 20; ++i) {
    pub->send(publish("poi/" + std::to_string(i), "p", 0, 0, true));
    pub->send(publish("cfg/" + std::to_string(i), "c", 0, 0, true));
  }
  auto sub = h.connect(id);
  sub->set_pending_bytes(600);
  return sub;
}

void unsubscribe(VirtualClient& c, const std::string& filter, std::uint16_t packet_id) {
  Unsubscribe u;
  u.packet_id = packet_id;
  u.filters.push_back(filter);
  c.send(u);
  CHECK(c.take<Unsuback>().packet_id == packet_id);
}

// Lets the client read, and counts each topic it is sent.
std::map<std::string, int> read_all(CoreHarness& h, VirtualClient& c) {
  c.set_pending_bytes(0);
  std::map<std::string, int> got;
  for (int turn = 0; turn < 20; ++turn) {
    h.advance(10);
    while (!c.received().empty()) ++got[c.take<Publish>().topic];
  }
  return got;
}

std::map<std::string, int> each_poi_once() {
  std::map<std::string, int> expected;
  for (int i = 0; i < 20; ++i) expected["poi/" + std::to_string(i)] = 1;
  return expected;
}

Options backlog_options() {
  Options o;
  o.limits.max_pending_output_bytes = 1000;
  return o;
}
}  // namespace

TEST_CASE("core: retained messages waiting for a filter the client unsubscribed are not sent", "[core]") {
  CoreHarness h(backlog_options());
  auto sub = stalled_subscriber(h, "us-sub");
  subscribe_ok(*sub, "poi/+", 0);
  subscribe_ok(*sub, "cfg/+", 0);
  subscribe_ok(*sub, "poi/7", 0);  // a subscription of its own: its retained message still goes
  h.connect("us-live")->send(publish("poi/live", "l", 0, 0, false));  // routed while subscribed
  unsubscribe(*sub, "poi/+", 9);
  std::map<std::string, int> expected{{"poi/7", 1}, {"poi/live", 1}};
  for (int i = 0; i < 20; ++i) expected["cfg/" + std::to_string(i)] = 1;
  CHECK(read_all(h, *sub) == expected);
}

TEST_CASE("core: a filter subscribed again gets its retained messages once, not the old backlog too",
          "[core]") {
  CoreHarness h(backlog_options());
  auto sub = stalled_subscriber(h, "rs-sub");
  subscribe_ok(*sub, "poi/+", 0);
  SECTION("after an UNSUBSCRIBE") { unsubscribe(*sub, "poi/+", 9); }
  SECTION("replacing the subscription [MQTT-3.8.4-3]") {}
  subscribe_ok(*sub, "poi/+", 0);
  CHECK(read_all(h, *sub) == each_poi_once());
}

TEST_CASE("core: an overlapping subscription keeps its own retained messages, not the removed one's",
          "[core]") {
  CoreHarness h(backlog_options());
  auto sub = stalled_subscriber(h, "ov-sub");
  subscribe_ok(*sub, "poi/#", 0);
  subscribe_ok(*sub, "poi/+", 0);  // the same twenty again, for this subscription
  unsubscribe(*sub, "poi/+", 9);
  CHECK(read_all(h, *sub) == each_poi_once());
}

// A 3.1.1 client with keep alive 2 s and 4 MiB of output it has not taken, held after the
// PINGREQ it sent then (answered): the broker reads nothing more of it.
namespace {
std::unique_ptr<VirtualClient> held_for_output(CoreHarness& h, const std::string& id) {
  auto c = h.open(ProtocolVersion::V311);
  Connect connect;
  connect.client_id = id;
  connect.keep_alive = 2;
  c->send(connect);
  c->take<Connack>();
  c->set_pending_bytes(4 * 1024 * 1024);
  c->send(Pingreq{});
  c->take<Pingresp>();
  REQUIRE(c->reading_paused());
  return c;
}
}  // namespace

TEST_CASE("core: a client held for its output that still sends PINGREQs is not closed by keep alive",
          "[core]") {
  // Its zero window holds it (nothing of its is read), but its packets keep arriving: the
  // silence is the broker's [MQTT-3.1.2-24].
  CoreHarness h;
  auto c = held_for_output(h, "pinging-deaf");
  for (int i = 0; i < 8; ++i) {  // 8 s, past 1.5 x its keep alive, a PINGREQ every second
    c->send(Pingreq{});
    h.advance(1000);
  }
  CHECK_FALSE(c->closed_by_broker());
  h.advance(3100);  // now it sends nothing either: keep alive runs out
  CHECK(c->closed_by_broker());
}

TEST_CASE("core: a client held for its output stays connected while it takes that output", "[core]") {
  CoreHarness h;
  auto c = held_for_output(h, "slow-reader");  // a large message on its way, slowly
  for (int i = 1; i <= 8; ++i) {  // 8 s, past 1.5 x its keep alive: it keeps taking output
    c->set_pending_bytes(static_cast<std::size_t>(40 - 4 * i) * 1024 * 1024 / 10);
    h.advance(1000);
  }
  CHECK_FALSE(c->closed_by_broker());
  h.advance(3100);  // now it takes nothing: keep alive runs out
  CHECK(c->closed_by_broker());
}

TEST_CASE("core: a wildcard over more retained topics than a turn walks: changes meanwhile arrive once, in order",
          "[core]") {
  CoreHarness h({}, 1);  // one worker: routing is immediate, turns are run by hand
  auto pub = h.connect("wk-pub");
  const int n = 20000;  // several turns' walk, and a level walked in slices
  for (int i = 0; i < n; ++i) pub->send(publish("wk/" + std::to_string(i), "old", 0, 0, true));
  auto sub = h.connect("wk-sub");
  h.hold_settling(true);
  sub->send(subscribe(1, "wk/+", 0));
  CHECK(sub->take<Suback>().reasons.at(0) == ReasonCode::Success);
  std::map<std::string, std::vector<std::string>> got;
  auto take_all = [&] {
    while (!sub->received().empty()) {
      auto p = sub->take<Publish>();
      got[p.topic].push_back(std::string(*p.payload) + (p.retain ? "/r" : "/live"));
    }
  };
  take_all();
  CHECK(got.size() < static_cast<std::size_t>(n));  // the walk goes on at the ends of turns
  pub->send(publish("wk/5", "new", 0, 0, true));      // replaced, reached or not
  pub->send(publish("wk/19999", "new", 0, 0, true));
  pub->send(publish("wk/added", "a", 0, 0, true));  // retained after the subscription: live only
  h.engine().worker(0).end_of_turn();
  take_all();
  // Clears take children out of the level being walked, and new topics grow it: both make the
  // walk copy what it has not reached.
  for (int i = 10000; i < 11000; ++i) pub->send(publish("wk/" + std::to_string(i), "", 0, 0, true));
  for (int i = 0; i < 5000; ++i) pub->send(publish("wk/x" + std::to_string(i), "a", 0, 0, true));
  h.hold_settling(false);
  for (int turn = 0; turn < 100; ++turn) {
    h.advance(10);
    take_all();
  }
  using V = std::vector<std::string>;
  for (const std::string t : {"wk/5", "wk/19999"}) {
    CHECK((got[t] == V{"old/r", "new/live"} || got[t] == V{"new/live"}));
  }
  CHECK(got["wk/added"] == V{"a/live"});
  int untouched = 0, cleared = 0, added = 0;
  for (const auto& [topic, values] : got) {
    if (topic.starts_with("wk/x")) {
      added += values == V{"a/live"};
      continue;
    }
    if (topic == "wk/5" || topic == "wk/19999" || topic == "wk/added") continue;
    const int i = std::stoi(topic.substr(3));
    if (i >= 10000 && i < 11000) {
      cleared += values == V{"old/r", "/live"} || values == V{"/live"};
    } else {
      untouched += values == V{"old/r"};
    }
  }
  CHECK(untouched == n - 2 - 1000);
  CHECK(cleared == 1000);
  CHECK(added == 5000);
}

TEST_CASE("core: wildcards whose retained messages add up past max_retained_messages each get all of theirs",
          "[core]") {
  Options o = backlog_options();
  o.limits.max_retained_messages = 40;  // the store is full with 20 poi/ and 20 cfg/
  CoreHarness h(o);
  auto sub = stalled_subscriber(h, "cap-sub");
  subscribe_ok(*sub, "poi/+", 0);
  subscribe_ok(*sub, "poi/#", 0);  // 20 more for this subscription: 40 waiting
  subscribe_ok(*sub, "+/+", 0);    // and 40 more
  auto expected = each_poi_once();
  for (auto& [topic, count] : expected) count = 3;
  for (int i = 0; i < 20; ++i) expected["cfg/" + std::to_string(i)] = 1;
  CHECK(read_all(h, *sub) == expected);
}

TEST_CASE("core: at QoS 1 an UNSUBSCRIBE leaves at most a window of its retained messages to come", "[core]") {
  Options o;
  o.limits.max_inflight = 10;
  CoreHarness h(o);
  auto pub = h.connect("q1c-pub");
  for (int i = 0; i < 2000; ++i) {
    pub->send(publish("q1c/" + std::to_string(i), "v", 1, static_cast<std::uint16_t>(i + 1), true));
    pub->take<Ack>();
  }
  auto sub = h.connect("q1c-sub");
  subscribe_ok(*sub, "q1c/+", 1);
  Unsubscribe u;
  u.packet_id = 9;
  u.filters.push_back("q1c/+");
  sub->send(u);
  int before = 0, after = 0;
  bool unsubacked = false;
  for (int turn = 0; turn < 100 && !sub->received().empty(); ++turn) {
    while (!sub->received().empty()) {
      if (std::holds_alternative<Unsuback>(sub->received().front())) {
        CHECK(sub->take<Unsuback>().packet_id == 9);
        unsubacked = true;
        continue;
      }
      auto p = sub->take<Publish>();
      ++(unsubacked ? after : before);
      sub->send(ack(PacketType::Puback, p.packet_id));
    }
    h.advance(10);
  }
  CHECK(unsubacked);
  CHECK(before == 10);       // the window, sent before the UNSUBSCRIBE came
  CHECK(after <= 2 * 10);    // at most the window again, queued when it came
}

TEST_CASE("core: a session's topic filters are bounded in bytes as in number; past either, SUBACK says "
          "Quota Exceeded",
          "[core]") {
  Options o;
  o.limits.max_subscription_bytes_per_session = 100;
  o.limits.max_subscriptions_per_session = 3;
  CoreHarness h(o);
  const auto filter = [](char c, std::size_t bytes) { return std::string(bytes, c); };
  const auto reason = [](VirtualClient& c, const std::string& f) {
    c.send(subscribe(1, f, 1));
    auto suback = c.take<Suback>();
    REQUIRE(suback.reasons.size() == 1);
    return suback.reasons[0];
  };
  auto car = h.connect("car-bytes");
  CHECK(reason(*car, filter('a', 60)) == ReasonCode::GrantedQos1);
  CHECK(reason(*car, filter('b', 41)) == ReasonCode::QuotaExceeded);  // 101 bytes in all
  CHECK(reason(*car, filter('c', 40)) == ReasonCode::GrantedQos1);    // 100: at the bound
  CHECK(reason(*car, filter('a', 60)) == ReasonCode::GrantedQos1);    // held already: no more bytes
  Unsubscribe u;
  u.packet_id = 2;
  u.filters.push_back(filter('a', 60));
  car->send(u);
  car->take<Unsuback>();
  CHECK(reason(*car, filter('b', 41)) == ReasonCode::GrantedQos1);  // the bytes came back
  CHECK(reason(*car, filter('d', 1)) == ReasonCode::GrantedQos1);
  CHECK(reason(*car, filter('e', 1)) == ReasonCode::QuotaExceeded);  // a fourth filter
  auto old = h.connect("old-bytes", ProtocolVersion::V311);
  CHECK(reason(*old, filter('a', 101)) == static_cast<ReasonCode>(0x80));
}

TEST_CASE("core: without keep alive, a packet that stops arriving for a minute is given up", "[core]") {
  // Its bytes count against the worker's budget for unfinished packets: clients that stall
  // there for good would refuse everyone's large packets.
  CoreHarness h;
  const auto connect_without_keep_alive = [&](const std::string& id) {
    auto c = h.open(ProtocolVersion::V5);
    Connect connect;
    connect.version = ProtocolVersion::V5;
    connect.client_id = id;
    connect.keep_alive = 0;
    c->send(connect);
    REQUIRE(c->take<Connack>().reason == ReasonCode::Success);
    return c;
  };
  std::string bytes;
  REQUIRE(protocol::encode(publish("t/x", std::string(100'000, 'x')), ProtocolVersion::V5, bytes));
  auto stalled = connect_without_keep_alive("stalled");
  auto slow = connect_without_keep_alive("slow");
  auto idle = connect_without_keep_alive("idle");
  h.advance(120'000);  // idle before the packet starts: that time does not count
  stalled->send_raw(bytes.substr(0, 5000));
  slow->send_raw(bytes.substr(0, 5000));
  h.advance(50'000);
  CHECK_FALSE(stalled->closed_by_broker());
  slow->send_raw(bytes.substr(5000, 2000));  // progress
  h.advance(11'000);
  CHECK(stalled->take<Disconnect>().reason == ReasonCode::KeepAliveTimeout);
  CHECK_FALSE(slow->closed_by_broker());
  slow->send_raw(bytes.substr(7000));
  slow->send(Pingreq{});
  slow->take<Pingresp>();
  h.advance(300'000);
  CHECK_FALSE(slow->closed_by_broker());
  CHECK_FALSE(idle->closed_by_broker());
}
