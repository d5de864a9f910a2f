// Publisher back-pressure (core/flow_control.hpp), driven in memory: a VirtualClient's
// pending bytes stand for a subscriber that does not read, and a held publisher's later
// packets wait unread as they would in the kernel.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/engine.hpp"
#include "support/core_harness.hpp"

using namespace broker;
using namespace broker::protocol;
using broker::test::CoreHarness;
using broker::test::VirtualClient;

namespace {

// A client id whose session lives on `worker`.
std::string id_on(CoreHarness& h, unsigned worker, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string id = prefix + std::to_string(i);
    if (h.engine().home_worker(id) == worker) return id;
  }
}

void subscribe_ok(VirtualClient& c, const std::string& filter, std::uint8_t qos = 0) {
  Subscribe s;
  s.packet_id = 1;
  s.entries.push_back(SubscribeEntry{filter, qos, false, false, 0});
  c.send(s);
  REQUIRE(c.take<Suback>().reasons.at(0) == static_cast<ReasonCode>(qos));
}

// A subscriber to t/# on worker 1 and a publisher on worker 0: its messages cross workers.
struct SubAndPub {
  std::unique_ptr<VirtualClient> sub, pub;
};
SubAndPub sub_and_pub(CoreHarness& h, std::uint8_t qos = 0) {
  auto sub = h.connect(id_on(h, 1, "sub"), ProtocolVersion::V311);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#", qos);
  return {std::move(sub), std::move(pub)};
}

void publish(VirtualClient& c, const std::string& payload) {
  c.send(broker::test::make_publish("t/1", payload));
}

// Payloads of the PUBLISH packets `c` received, in order.
std::vector<std::string> payloads(VirtualClient& c) {
  std::vector<std::string> out;
  while (!c.received().empty()) out.emplace_back(c.take<Publish>().payload->view());
  return out;
}

std::uint64_t dropped(CoreHarness& h) {
  std::uint64_t n = 0;
  for (unsigned w = 0; w < h.engine().worker_count(); ++w)
    n += h.engine().worker(w).counters().messages_dropped.load();
  return n;
}

// The subscriber takes and acknowledges what arrives, for up to `rounds` rounds or until
// `expected` messages came; returns their payloads in order.
std::vector<std::string> acknowledge_all(VirtualClient& sub, std::size_t expected, int rounds) {
  std::vector<std::string> got;
  for (int round = 0; round < rounds && got.size() < expected; ++round) {
    while (!sub.received().empty()) {
      auto p = sub.take<Publish>();
      got.emplace_back(p.payload->view());
      Ack ack;
      ack.type = PacketType::Puback;
      ack.packet_id = p.packet_id;
      sub.send(ack);
    }
  }
  return got;
}

// `n` publishers on worker 0, each sending one QoS 1 message to "t/1".
std::vector<std::unique_ptr<VirtualClient>> publishers_sending_one_each(CoreHarness& h, int n) {
  std::vector<std::unique_ptr<VirtualClient>> pubs;
  for (int i = 0; i < n; ++i) {
    pubs.push_back(h.connect(id_on(h, 0, "pub" + std::to_string(i) + "-"), ProtocolVersion::V311));
    pubs.back()->send(broker::test::make_publish("t/1", "m" + std::to_string(i), 1, 1));
  }
  return pubs;
}

Options small_limits() {
  Options o;
  o.limits.output_high_water_bytes = 500;
  o.limits.output_low_water_bytes = 100;
  o.limits.max_pending_output_bytes = 1000;
  o.limits.max_publisher_pause_ms = 2000;
  return o;
}

}  // namespace

TEST_CASE("flow: a congested subscriber holds its publisher until it drains; nothing is lost",
          "[core][flow]") {
  CoreHarness h(small_limits());
  const bool same_worker = GENERATE(true, false);
  CAPTURE(same_worker);
  auto sub = h.connect(id_on(h, 0, "sub"), ProtocolVersion::V311);
  auto pub = h.connect(id_on(h, same_worker ? 0 : 1, "pub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#");

  sub->set_pending_bytes(600);  // above the high-water mark, below the drop limit
  publish(*pub, "m1");          // written; the subscriber is now Congested
  publish(*pub, "m2");          // routed (Congested seen): the publisher is held after it
  CHECK(pub->reading_paused());
  publish(*pub, "m3");  // waits unread
  publish(*pub, "m4");
  CHECK(payloads(*sub) == std::vector<std::string>{"m1", "m2"});

  sub->set_pending_bytes(50);  // below the low-water mark
  h.settle();
  CHECK_FALSE(pub->reading_paused());
  CHECK(payloads(*sub) == std::vector<std::string>{"m3", "m4"});
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: bytes read before the hold are handled in order when it ends", "[core][flow]") {
  CoreHarness h(small_limits());
  auto sub = h.connect(id_on(h, 0, "sub"), ProtocolVersion::V311);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#");
  sub->set_pending_bytes(600);
  publish(*pub, "first");  // Congested from here

  // Three PUBLISH packets in one read: the hold comes after the first, the others wait.
  std::string bytes;
  for (const char* p : {"a", "b", "c"}) REQUIRE(encode(broker::test::make_publish("t/1", p), ProtocolVersion::V311, bytes));
  pub->send_raw(bytes);
  CHECK(pub->reading_paused());
  CHECK(payloads(*sub) == std::vector<std::string>{"first", "a"});

  sub->set_pending_bytes(0);
  h.settle();
  CHECK(payloads(*sub) == std::vector<std::string>{"b", "c"});
  CHECK_FALSE(pub->reading_paused());
}

TEST_CASE("flow: a stuck subscriber holds publishers at most max_publisher_pause_ms, then its QoS 0 is dropped",
          "[core][flow]") {
  CoreHarness h(small_limits());
  auto [sub, pub] = sub_and_pub(h);
  sub->set_pending_bytes(600);
  publish(*pub, "m1");
  sub->set_pending_bytes(5000);  // past the drop limit, yet held publishers' messages still arrive
  publish(*pub, "m2");
  CHECK(pub->reading_paused());
  publish(*pub, "m3");  // unread
  CHECK(payloads(*sub) == std::vector<std::string>{"m1", "m2"});

  h.advance(1000);
  CHECK(pub->reading_paused());
  h.advance(1001);  // the subscriber is Stuck: the publisher goes on, and m3 is dropped
  CHECK_FALSE(pub->reading_paused());
  CHECK(payloads(*sub).empty());
  CHECK(dropped(h) == 1);

  publish(*pub, "m4");  // a Stuck subscriber holds nobody
  CHECK_FALSE(pub->reading_paused());
  CHECK(dropped(h) == 2);

  sub->set_pending_bytes(0);  // it reads again: Open, and messages flow
  h.settle();
  publish(*pub, "m5");
  CHECK(payloads(*sub) == std::vector<std::string>{"m5"});
}

TEST_CASE("flow: a subscriber that was stuck holds nobody for 10 x max_publisher_pause_ms",
          "[core][flow]") {
  // Else a client filling its own output and draining it, again and again, stalls every
  // publisher to its filters 2 s at a time.
  CoreHarness h(small_limits());
  auto [sub, pub] = sub_and_pub(h);
  sub->set_pending_bytes(600);
  publish(*pub, "m1");  // the subscriber is Congested after it
  publish(*pub, "m2");  // which holds its publisher
  CHECK(pub->reading_paused());
  h.advance(2001);  // Stuck
  CHECK_FALSE(pub->reading_paused());
  sub->set_pending_bytes(0);  // drains: Open
  h.advance(100);
  sub->set_pending_bytes(600);  // and fills again at once
  publish(*pub, "m3");
  publish(*pub, "m4");
  CHECK_FALSE(pub->reading_paused());  // cooling down: nobody held
  sub->set_pending_bytes(0);
  h.advance(20000);  // the cool-down is over
  sub->set_pending_bytes(600);
  publish(*pub, "m5");
  publish(*pub, "m6");
  CHECK(pub->reading_paused());
}

TEST_CASE("flow: a subscriber that goes away releases its publishers", "[core][flow]") {
  CoreHarness h(small_limits());
  auto sub = h.connect(id_on(h, 1, "sub"), ProtocolVersion::V311);
  auto other = h.connect(id_on(h, 1, "other"), ProtocolVersion::V311);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#");
  subscribe_ok(*other, "t/#");
  sub->set_pending_bytes(600);
  publish(*pub, "m1");
  publish(*pub, "m2");
  CHECK(pub->reading_paused());
  publish(*pub, "m3");

  sub->drop();
  h.settle();
  CHECK_FALSE(pub->reading_paused());
  CHECK(payloads(*other) == std::vector<std::string>{"m1", "m2", "m3"});
}

TEST_CASE("flow: one Congested receiver among Open ones holds nobody; its own bounds apply to it",
          "[core][flow]") {
  // A broadcast to a fleet with one vehicle on a slow link: the others are not slowed to its
  // pace; its QoS 0 past max_pending_output_bytes is dropped, as without back-pressure.
  CoreHarness h(small_limits());
  const bool same_worker = GENERATE(true, false);
  CAPTURE(same_worker);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  auto slow = h.connect(id_on(h, same_worker ? 0 : 1, "slow"), ProtocolVersion::V311);
  std::vector<std::unique_ptr<VirtualClient>> fleet;
  for (int i = 0; i < 3; ++i) {
    fleet.push_back(h.connect(id_on(h, i % 2, "car" + std::to_string(i) + "-"), ProtocolVersion::V311));
    subscribe_ok(*fleet.back(), "t/#");
  }
  subscribe_ok(*slow, "t/#");
  slow->set_pending_bytes(600);  // past the high-water mark: Congested after the first message
  std::vector<std::string> sent;
  for (int i = 0; i < 3; ++i) {
    sent.push_back("m" + std::to_string(i));
    publish(*pub, sent.back());
    h.settle();
    CHECK_FALSE(pub->reading_paused());
  }
  // Past max_pending_output_bytes, once what was on its way when it became Congested had time
  // to arrive (core::kHoldGraceMs): it loses QoS 0 from here.
  slow->set_pending_bytes(1001);
  h.advance(core::kHoldGraceMs);
  for (int i = 3; i < 6; ++i) {
    sent.push_back("m" + std::to_string(i));
    publish(*pub, sent.back());
    h.settle();
    CHECK_FALSE(pub->reading_paused());
  }
  for (auto& car : fleet) CHECK(payloads(*car) == sent);
  CHECK(payloads(*slow) == std::vector<std::string>{"m0", "m1", "m2"});
  CHECK(dropped(h) == 3);
}

TEST_CASE("flow: a fan-out held while most receivers are Congested goes on once most drained",
          "[core][flow]") {
  CoreHarness h(small_limits());
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  std::vector<std::unique_ptr<VirtualClient>> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(h.connect(id_on(h, i % 2, "car" + std::to_string(i) + "-"), ProtocolVersion::V311));
    subscribe_ok(*subs.back(), "t/#");
    subs.back()->set_pending_bytes(600);
  }
  publish(*pub, "m1");  // every receiver is Congested after it
  h.settle();
  publish(*pub, "m2");
  h.settle();
  CHECK(pub->reading_paused());
  for (int i = 0; i < 3; ++i) subs[i]->set_pending_bytes(0);  // three drain, one stays slow
  h.settle();
  CHECK_FALSE(pub->reading_paused());
  publish(*pub, "m3");
  h.settle();
  CHECK_FALSE(pub->reading_paused());
  for (int i = 0; i < 3; ++i) CHECK(payloads(*subs[i]) == std::vector<std::string>{"m1", "m2", "m3"});
}

TEST_CASE("flow: a receiver that still holds a publisher wakes its worker when it drains, though another publisher stopped waiting for it",
          "[core][flow]") {
  // The platform's fan-out goes on once most of its receivers drained; the vehicles feeding
  // only the slow one still wait for it, and must be woken when it drains, not at a tick.
  CoreHarness h(small_limits());
  auto platform = h.connect(id_on(h, 0, "platform"), ProtocolVersion::V311);
  std::vector<std::unique_ptr<VirtualClient>> feeders;
  for (int i = 0; i < 6; ++i)
    feeders.push_back(h.connect(id_on(h, 0, "feeder" + std::to_string(i) + "-"), ProtocolVersion::V311));
  auto slow = h.connect(id_on(h, 1, "slow"), ProtocolVersion::V311);
  auto lagging = h.connect(id_on(h, 1, "lagging"), ProtocolVersion::V311);
  auto fast = h.connect(id_on(h, 1, "fast"), ProtocolVersion::V311);
  subscribe_ok(*slow, "fan/x");
  subscribe_ok(*slow, "one/x");
  subscribe_ok(*lagging, "fan/x");
  subscribe_ok(*fast, "fan/x");
  slow->set_pending_bytes(600);
  lagging->set_pending_bytes(600);
  platform->send(broker::test::make_publish("fan/x", "p0"));  // slow and lagging Congested
  h.settle();
  platform->send(broker::test::make_publish("fan/x", "p1"));  // two of three Congested: held
  h.settle();
  REQUIRE(platform->reading_paused());
  // Held after the platform: whichever order the worker looks at its held publishers in,
  // some come before it and some after.
  for (auto& f : feeders) {
    f->send(broker::test::make_publish("one/x", "f"));
    h.settle();
    REQUIRE(f->reading_paused());
  }
  // Turn by turn, as the event loops would run them: the vehicles' worker sees lagging drain
  // and wakes the publishers' worker, whose one turn lets the platform go on; then it sleeps.
  lagging->set_pending_bytes(0);
  h.engine().worker(1).end_of_turn();
  h.engine().worker(0).end_of_turn();
  CHECK_FALSE(platform->reading_paused());  // one of three Congested holds it no longer

  const std::size_t wake_ups = h.dispatcher().posted_to(0);
  slow->set_pending_bytes(0);
  h.engine().worker(1).end_of_turn();
  CHECK(h.dispatcher().posted_to(0) > wake_ups);
  h.settle();
  for (auto& f : feeders) CHECK_FALSE(f->reading_paused());
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: a publisher that reached an Open receiver since one became Congested is not held by it",
          "[core][flow]") {
  // A platform sending each vehicle its own commands: a PUBLISH to the one slow vehicle alone
  // does not stop the commands to the others. A publisher feeding only that vehicle is held.
  CoreHarness h(small_limits());
  auto platform = h.connect(id_on(h, 0, "platform"), ProtocolVersion::V311);
  auto feeder = h.connect(id_on(h, 1, "feeder"), ProtocolVersion::V311);
  auto slow = h.connect(id_on(h, 1, "slow"), ProtocolVersion::V311);
  auto other = h.connect(id_on(h, 0, "other"), ProtocolVersion::V311);
  subscribe_ok(*slow, "cmd/slow");
  subscribe_ok(*other, "cmd/other");
  auto command = [&](VirtualClient& from, const char* topic, const char* payload) {
    from.send(broker::test::make_publish(topic, payload));
    h.settle();
  };
  command(*feeder, "cmd/slow", "f0");     // the feeder reached slow while it was Open
  slow->set_pending_bytes(600);
  command(*platform, "cmd/slow", "p0");   // slow is Congested from here
  command(*platform, "cmd/other", "p1");  // the platform reached an Open receiver since
  command(*platform, "cmd/slow", "p2");
  CHECK_FALSE(platform->reading_paused());
  command(*platform, "cmd/other", "p3");
  CHECK(payloads(*other) == std::vector<std::string>{"p1", "p3"});
  command(*feeder, "cmd/slow", "f1");  // the feeder did not: held
  CHECK(feeder->reading_paused());
  CHECK(payloads(*slow) == std::vector<std::string>{"f0", "p0", "p2", "f1"});
  slow->set_pending_bytes(0);
  h.settle();
  CHECK_FALSE(feeder->reading_paused());
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: a shared subscription sends to a member that keeps up", "[core][flow]") {
  CoreHarness h(small_limits());
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  auto slow = h.connect(id_on(h, 1, "slow"), ProtocolVersion::V311);
  auto fast = h.connect(id_on(h, 1, "fast"), ProtocolVersion::V311);
  subscribe_ok(*slow, "$share/g/t/#");
  subscribe_ok(*fast, "$share/g/t/#");
  slow->set_pending_bytes(600);
  for (int i = 0; i < 6; ++i) {  // round robin: the first that reaches slow makes it Congested
    publish(*pub, "m" + std::to_string(i));
    h.settle();
  }
  const auto to_slow = payloads(*slow);
  CHECK(to_slow.size() == 1);
  CHECK(payloads(*fast).size() == 5);
  CHECK_FALSE(pub->reading_paused());
}

TEST_CASE("flow: a filling worker inbox holds the publisher instead of dropping a batch",
          "[core][flow]") {
  Options o;
  o.limits.max_worker_inbox = 8;  // held above 2 deliveries waiting, released at 1
  CoreHarness h(o);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  std::vector<std::unique_ptr<VirtualClient>> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(h.connect(id_on(h, 1, "sub" + std::to_string(i) + "-"), ProtocolVersion::V311));
    subscribe_ok(*subs.back(), "t/#");
  }
  std::string bytes;
  for (const char* p : {"a", "b", "c", "d"}) REQUIRE(encode(broker::test::make_publish("t/1", p), ProtocolVersion::V311, bytes));
  pub->send_raw(bytes);  // each PUBLISH makes 5 deliveries to worker 1: held after each
  for (auto& s : subs) CHECK(payloads(*s) == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK_FALSE(pub->reading_paused());
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: QoS 1/2 to a client that does not take its output wait in its queue, not in its output",
          "[core][flow]") {
  // A vehicle that stopped reading would otherwise be written its whole inflight window:
  // 64 files of 16 MiB held in memory for as long as it stays connected.
  const bool back_pressure = GENERATE(true, false);
  CAPTURE(back_pressure);
  Options o = small_limits();
  if (!back_pressure) o.limits.output_high_water_bytes = 0;
  CoreHarness h(o);
  auto car = h.connect(id_on(h, 1, "car"), ProtocolVersion::V311);
  auto platform = h.connect(id_on(h, 0, "platform"), ProtocolVersion::V311);
  subscribe_ok(*car, "file/#", 1);
  car->set_pending_bytes(o.limits.max_queued_bytes + 1);  // past what its queue may hold
  for (std::uint16_t id = 1; id <= 3; ++id) {
    platform->send(broker::test::make_publish("file/a", "f" + std::to_string(id), id == 3 ? 2 : 1, id));
    h.settle();
  }
  CHECK(car->received().empty());
  car->set_pending_bytes(0);
  h.settle();
  std::vector<std::string> got;
  while (!car->received().empty()) got.emplace_back(car->take<Publish>().payload->view());
  CHECK(got == std::vector<std::string>{"f1", "f2", "f3"});
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: with back-pressure off, QoS 0 past max_pending_output_bytes is dropped", "[core][flow]") {
  Options o = small_limits();
  o.limits.output_high_water_bytes = 0;
  CoreHarness h(o);
  auto sub = h.connect(id_on(h, 0, "sub"), ProtocolVersion::V311);
  auto pub = h.connect(id_on(h, 0, "pub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#");
  sub->set_pending_bytes(1001);
  publish(*pub, "m1");
  publish(*pub, "m2");
  CHECK_FALSE(pub->reading_paused());
  CHECK(payloads(*sub).empty());
  CHECK(dropped(h) == 2);
}

TEST_CASE("flow: a QoS 1 subscriber whose queue fills holds its publisher", "[core][flow]") {
  Options o;
  o.limits.max_queued_messages = 8;  // Congested past 4 queued, Open again at 2
  o.limits.max_inflight = 1;
  CoreHarness h(o);
  auto [sub, pub] = sub_and_pub(h, 1);
  for (std::uint16_t id = 1; id <= 8; ++id) {
    pub->send(broker::test::make_publish("t/1", "m" + std::to_string(id), 1, id));
    while (!pub->received().empty()) pub->take<Ack>();
  }
  CHECK(pub->reading_paused());
  // The subscriber acknowledges one at a time (window 1): everything arrives, nothing dropped.
  const auto got = acknowledge_all(*sub, 8, 20);
  CHECK(got.size() == 8);
  CHECK(got.front() == "m1");
  CHECK(got.back() == "m8");
  CHECK_FALSE(pub->reading_paused());
  CHECK(dropped(h) == 0);
}

TEST_CASE("flow: a slow reader that makes progress keeps holding its publishers", "[core][flow]") {
  CoreHarness h(small_limits());
  auto [sub, pub] = sub_and_pub(h);
  sub->set_pending_bytes(5000);
  publish(*pub, "m1");  // past the drop limit while Open: dropped, and the subscriber is Congested
  sub->set_pending_bytes(600);
  publish(*pub, "m2");
  CHECK(pub->reading_paused());
  h.advance(1500);
  sub->set_pending_bytes(450);  // fell by more than the low-water mark (100): progress
  h.advance(1000);              // 2.5 s since it became Congested, 1 s since its progress
  CHECK(pub->reading_paused());
  h.advance(1000);  // the progress was seen 1 s ago
  CHECK(pub->reading_paused());
  h.advance(1001);  // no progress for 2 s: Stuck
  CHECK_FALSE(pub->reading_paused());
}

TEST_CASE("flow: a reader taking what the kernel holds for it makes progress", "[core][flow]") {
  // Its link's buffer does not move (QoS 0 went ahead of a full QoS 1 window, say) while it
  // reads what the kernel's send queue holds: slow, not stuck.
  CoreHarness h(small_limits());
  auto [sub, pub] = sub_and_pub(h);
  sub->set_pending_bytes(600);  // past the high-water mark (500)
  sub->set_unsent_in_kernel(5000);
  publish(*pub, "m1");
  publish(*pub, "m2");
  CHECK(pub->reading_paused());
  h.advance(1500);
  sub->set_unsent_in_kernel(4000);  // the kernel's share fell by more than the low-water mark
  h.advance(1000);                  // 2.5 s since it became Congested: the progress is seen
  CHECK(pub->reading_paused());
  h.advance(1000);
  CHECK(pub->reading_paused());
  h.advance(1001);  // no progress for 2 s: Stuck
  CHECK_FALSE(pub->reading_paused());
}

TEST_CASE("flow: what many publishers sent before the hold reached them is queued, not dropped",
          "[core][flow]") {
  Options o;
  o.limits.max_queued_messages = 8;  // Congested past 4 queued
  o.limits.max_inflight = 1;
  CoreHarness h(o);
  auto sub = h.connect(id_on(h, 1, "sub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#", 1);
  // Each publisher's one message is routed before it sees the subscriber Congested: 40 of
  // them overfill the queue (8) while staying under the held bound (16 x 8).
  auto pubs = publishers_sending_one_each(h, 40);
  std::size_t held = 0;
  for (auto& p : pubs) held += p->reading_paused() ? 1 : 0;
  CHECK(held > 30);
  CHECK(acknowledge_all(*sub, 40, 100).size() == 40);
  CHECK(dropped(h) == 0);
  for (auto& p : pubs) CHECK_FALSE(p->reading_paused());
}

TEST_CASE("flow: the held queue is bounded: past 16 x max_queued_messages the oldest go",
          "[core][flow]") {
  Options o;
  o.limits.max_queued_messages = 2;  // held bound 32
  o.limits.max_inflight = 1;
  CoreHarness h(o);
  auto sub = h.connect(id_on(h, 1, "sub"), ProtocolVersion::V311);
  subscribe_ok(*sub, "t/#", 1);
  auto pubs = publishers_sending_one_each(h, 50);
  // One in flight, 32 queued, the 17 oldest queued ones dropped.
  CHECK(dropped(h) == 50 - 1 - 32);
}
