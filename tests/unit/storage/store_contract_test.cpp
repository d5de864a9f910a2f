// The broker::Store contract (broker/store.hpp), run against both implementations.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "broker/store.hpp"
#include "unit/storage/store_test_util.hpp"

namespace {

using namespace broker;
using broker::test::Collector;
using broker::test::load_all;
using broker::test::make_delivery;
using broker::test::make_message;
using broker::test::make_session;
using broker::test::submit_and_wait;
using broker::test::TempDir;

struct MemoryStoreKind {
  static constexpr bool kDurable = false;
  static StorePtr open(const TempDir&) { return make_memory_store(); }
};

struct LmdbStoreKind {
  static constexpr bool kDurable = true;
  static StorePtr open(const TempDir& dir) {
    LmdbStoreOptions options;
    options.dir = dir.path();
    options.sync = false;  // the contract does not depend on fsync; keeps the suite fast
    options.map_size = 64ull << 20;
    auto store = open_lmdb_store(options);
    REQUIRE(store.status().to_string() == "OK");
    return std::move(store).value();
  }
};

std::vector<std::uint64_t> sequences(const std::vector<LogRecord>& records) {
  std::vector<std::uint64_t> out;
  for (const auto& r : records) out.push_back(r.sequence);
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("store contract: put and delete each record kind", "[storage]", MemoryStoreKind,
                   LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  WriteBatch b;
  StoredMessage m = make_message(7, "a/b", "hello", 1000);
  m.message.content_type = "text/plain";
  m.message.user_properties = {{"k", "v"}};
  m.origin_client_id = "pub";
  StoredSession s = make_session("c1");
  s.will = StoredWill{m.message, 5, 0};
  s.inbound_qos2 = {3, 9};
  StoredDelivery d = make_delivery("c1", 7);
  d.state = DeliveryState::AwaitPubrec;
  d.packet_id = 12;
  d.subscription_ids = {1, 2};
  StoredMessage r = make_message(8, "retained/topic", "kept");
  b.put_message(m);
  b.put_session(s);
  b.put_delivery(d);
  b.put_retained(r);
  REQUIRE(submit_and_wait(*store, std::move(b)));

  Collector c = load_all(*store);
  REQUIRE(c.messages.size() == 1);
  CHECK(test::equal(c.messages[0], m));
  REQUIRE(c.sessions.size() == 1);
  CHECK(test::equal(c.sessions[0], s));
  REQUIRE(c.deliveries.size() == 1);
  CHECK(test::equal(c.deliveries[0], d));
  REQUIRE(c.retained.size() == 1);
  CHECK(test::equal(c.retained[0], r));

  WriteBatch del;
  del.delete_message(7);
  del.delete_delivery("c1", 7);
  del.delete_retained("retained/topic");
  del.delete_session("c1");
  del.delete_message(12345);  // absent: not an error
  REQUIRE(submit_and_wait(*store, std::move(del)));
  c = load_all(*store);
  CHECK(c.order.empty());
}

TEMPLATE_TEST_CASE("store contract: one session keeps a copy of a message per shared subscription",
                   "[storage]", MemoryStoreKind, LmdbStoreKind) {
  // A session in two groups (or a group and a plain subscription) that both match holds two
  // deliveries of one message: neither may overwrite the other.
  TempDir dir;
  StorePtr store = TestType::open(dir);
  StoredDelivery plain = make_delivery("c1", 7);
  StoredDelivery g1 = make_delivery("c1", 7);
  g1.shared = true;
  g1.shared_tag = 0x11;
  g1.subscription_ids = {1};
  StoredDelivery g2 = g1;
  g2.shared_tag = 0xFFFFFFFFu;
  g2.subscription_ids = {2};
  WriteBatch b;
  b.put_message(make_message(7, "f/a", "x"));
  for (const auto& d : {plain, g1, g2}) b.put_delivery(d);
  REQUIRE(submit_and_wait(*store, std::move(b)));
  Collector c = load_all(*store);
  REQUIRE(c.deliveries.size() == 3);
  CHECK(test::equal(c.deliveries[0], plain));  // in key order: the tag sorts after the id
  CHECK(test::equal(c.deliveries[1], g1));
  CHECK(test::equal(c.deliveries[2], g2));

  WriteBatch del;
  del.delete_delivery("c1", 7, 0x11);
  REQUIRE(submit_and_wait(*store, std::move(del)));
  c = load_all(*store);
  REQUIRE(c.deliveries.size() == 2);
  CHECK(test::equal(c.deliveries[0], plain));
  CHECK(test::equal(c.deliveries[1], g2));
}

TEMPLATE_TEST_CASE("store contract: later operations in a batch win", "[storage]",
                   MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  WriteBatch b;
  b.put_message(make_message(1, "t", "first"));
  b.put_message(make_message(1, "t", "second"));
  b.put_message(make_message(2, "t", "gone"));
  b.delete_message(2);
  b.delete_retained("r");
  b.put_retained(make_message(3, "r", "back"));
  b.put_session(make_session("c"));
  b.delete_session("c");
  b.put_delivery(make_delivery("d", 1));
  b.delete_session("d");
  b.put_delivery(make_delivery("d", 2));
  REQUIRE(submit_and_wait(*store, std::move(b)));

  Collector c = load_all(*store);
  REQUIRE(c.messages.size() == 1);
  CHECK(c.messages[0].message.payload == "second");
  REQUIRE(c.retained.size() == 1);
  CHECK(c.retained[0].message.payload == "back");
  CHECK(c.sessions.empty());
  REQUIRE(c.deliveries.size() == 1);
  CHECK(c.deliveries[0].message_id == 2);
}

TEMPLATE_TEST_CASE("store contract: a DeleteRetained with only_id spares a newer message", "[storage]",
                   MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  WriteBatch put;
  put.put_retained(make_message(1, "expired", "old"));
  put.put_retained(make_message(3, "replaced", "newer"));  // message 2 expired, 3 replaced it
  REQUIRE(submit_and_wait(*store, std::move(put)));
  WriteBatch purge;
  purge.delete_retained("expired", 1);
  purge.delete_retained("replaced", 2);
  purge.delete_retained("absent", 7);
  REQUIRE(submit_and_wait(*store, std::move(purge)));
  Collector c = load_all(*store);
  REQUIRE(c.retained.size() == 1);
  CHECK(c.retained[0].message.topic == "replaced");
  CHECK(c.retained[0].id == 3);
}

TEMPLATE_TEST_CASE("store contract: DeleteSession removes that session's deliveries only",
                   "[storage]", MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  WriteBatch b;
  // "a" is a prefix of "ab": a range delete that forgot the separator would take both.
  for (const char* id : {"a", "ab", "b"}) {
    b.put_session(make_session(id));
    for (std::uint64_t m : {1u, 2u, 300u}) b.put_delivery(make_delivery(id, m));
  }
  REQUIRE(submit_and_wait(*store, std::move(b)));
  WriteBatch del;
  del.delete_session("a");
  REQUIRE(submit_and_wait(*store, std::move(del)));

  Collector c = load_all(*store);
  REQUIRE(c.sessions.size() == 2);
  CHECK(c.sessions[0].client_id == "ab");
  CHECK(c.sessions[1].client_id == "b");
  REQUIRE(c.deliveries.size() == 6);
  for (const auto& d : c.deliveries) CHECK(d.client_id != "a");
}

TEMPLATE_TEST_CASE("store contract: load order", "[storage]", MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  // Ids chosen so that little-endian or text order would differ from numeric order.
  const std::vector<std::uint64_t> ids = {70000, 5, 256, 1, 0x0100000000000000ull, 255};
  WriteBatch b;
  b.put_retained(make_message(900, "z"));
  b.put_retained(make_message(901, "a"));
  for (const char* client : {"zed", "amy", "bob"}) {
    b.put_session(make_session(client));
    for (std::uint64_t id : ids) b.put_delivery(make_delivery(client, id));
  }
  for (std::uint64_t id : ids) b.put_message(make_message(id));
  b.mark_alive(1'700'000'000'000ull);
  REQUIRE(submit_and_wait(*store, std::move(b)));

  Collector c = load_all(*store);
  CHECK(c.order == "a" + std::string(6, 'm') + std::string(3, 's') + std::string(18, 'd') + "rr");
  std::vector<std::uint64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(c.messages[i].id == sorted[i]);
  // Deliveries: grouped by client, each group in message id order.
  std::vector<std::string> clients;
  for (std::size_t i = 0; i < c.deliveries.size(); ++i) {
    const auto& d = c.deliveries[i];
    if (clients.empty() || clients.back() != d.client_id) clients.push_back(d.client_id);
    CHECK(d.message_id == sorted[i % sorted.size()]);
  }
  CHECK(clients == std::vector<std::string>{"amy", "bob", "zed"});
  CHECK(c.retained[0].message.topic == "a");
}

TEMPLATE_TEST_CASE("store contract: the latest alive time is kept, none before the first", "[storage]",
                   MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  CHECK_FALSE(load_all(*store).alive.has_value());
  WriteBatch b;
  b.mark_alive(5000);
  b.mark_alive(6000);
  REQUIRE(submit_and_wait(*store, std::move(b)));
  WriteBatch next;
  next.mark_alive(7000);
  REQUIRE(submit_and_wait(*store, std::move(next)));
  Collector c = load_all(*store);
  REQUIRE(c.alive.has_value());
  CHECK(*c.alive == 7000);
  CHECK(c.order == "a");
}

TEMPLATE_TEST_CASE("store contract: log sequences start at 1 and increase", "[storage]",
                   MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  for (int batch = 0; batch < 3; ++batch) {
    WriteBatch b;
    for (int i = 0; i < 4; ++i) b.append_log(make_message(0, "log", "xx", 100));
    REQUIRE(submit_and_wait(*store, std::move(b)));
  }
  auto all = store->read_log(0, 100);
  REQUIRE(all);
  REQUIRE(all.value().size() == 12);
  for (std::size_t i = 0; i < 12; ++i) CHECK(all.value()[i].sequence == i + 1);

  auto page = store->read_log(5, 3);
  REQUIRE(page);
  CHECK(sequences(page.value()) == std::vector<std::uint64_t>{5, 6, 7});
  CHECK(store->read_log(13, 10).value().empty());
  CHECK(store->read_log(1, 0).value().empty());

  // Trimming everything must not restart the numbering.
  CHECK(store->trim_log(1000, ~0ull).value() == 12);
  WriteBatch b;
  b.append_log(make_message(0, "log", "xx", 2000));
  REQUIRE(submit_and_wait(*store, std::move(b)));
  CHECK(sequences(store->read_log(0, 10).value()) == std::vector<std::uint64_t>{13});

  if (TestType::kDurable) {
    store.reset();
    store = TestType::open(dir);
    WriteBatch again;
    again.append_log(make_message(0, "log", "yy", 3000));
    REQUIRE(submit_and_wait(*store, std::move(again)));
    CHECK(sequences(store->read_log(0, 10).value()) == std::vector<std::uint64_t>{13, 14});
  }
}

TEMPLATE_TEST_CASE("store contract: find_log_time", "[storage]", MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  CHECK(store->find_log_time(0).value() == 1);  // empty: the next sequence
  WriteBatch b;
  for (std::uint64_t t : {100u, 200u, 200u, 300u}) b.append_log(make_message(0, "log", "p", t));
  REQUIRE(submit_and_wait(*store, std::move(b)));
  CHECK(store->find_log_time(0).value() == 1);
  CHECK(store->find_log_time(100).value() == 1);
  CHECK(store->find_log_time(101).value() == 2);
  CHECK(store->find_log_time(200).value() == 2);
  CHECK(store->find_log_time(300).value() == 4);
  CHECK(store->find_log_time(301).value() == 5);
}

TEMPLATE_TEST_CASE("store contract: consumer offsets", "[storage]", MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  CHECK(store->consumer_offset("fleet").value() == 0);
  REQUIRE(store->commit_consumer_offset("fleet", 42));
  REQUIRE(store->commit_consumer_offset("other", 7));
  CHECK(store->consumer_offset("fleet").value() == 42);
  REQUIRE(store->commit_consumer_offset("fleet", 43));
  CHECK(store->consumer_offset("fleet").value() == 43);
  CHECK(store->consumer_offset("other").value() == 7);
  if (TestType::kDurable) {
    store.reset();
    store = TestType::open(dir);
    CHECK(store->consumer_offset("fleet").value() == 43);
  }
}

TEMPLATE_TEST_CASE("store contract: trim by age and by bytes", "[storage]", MemoryStoreKind,
                   LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  WriteBatch b;
  // Sequences 1..6, arrival 10..60, payload 10 bytes each.
  for (std::uint64_t t = 10; t <= 60; t += 10) b.append_log(make_message(0, "log", std::string(10, 'x'), t));
  REQUIRE(submit_and_wait(*store, std::move(b)));

  CHECK(store->trim_log(0, ~0ull).value() == 0);
  CHECK(store->trim_log(30, ~0ull).value() == 2);  // arrival 10, 20
  CHECK(sequences(store->read_log(0, 10).value()) == std::vector<std::uint64_t>{3, 4, 5, 6});
  CHECK(store->trim_log(0, 25).value() == 2);  // 40 bytes kept -> oldest go until <= 25
  CHECK(sequences(store->read_log(0, 10).value()) == std::vector<std::uint64_t>{5, 6});
  CHECK(store->trim_log(0, 20).value() == 0);
  CHECK(store->find_log_time(0).value() == 5);
  CHECK(store->trim_log(0, 0).value() == 2);
  CHECK(store->read_log(0, 10).value().empty());
  CHECK(store->find_log_time(0).value() == 7);
}

TEMPLATE_TEST_CASE("store contract: completions run once each, in submission order", "[storage]",
                   MemoryStoreKind, LmdbStoreKind) {
  TempDir dir;
  StorePtr store = TestType::open(dir);
  // Completions never run concurrently with each other, and flush() orders them before us;
  // assertions stay on this thread (Catch2 is not thread-safe).
  std::vector<int> done;
  int failures = 0;
  for (int i = 0; i < 200; ++i) {
    WriteBatch b;
    b.put_message(make_message(static_cast<std::uint64_t>(i + 1)));
    store->submit(std::move(b), [&done, &failures, i](const Status& st) {
      failures += st.is_ok() ? 0 : 1;
      done.push_back(i);
    });
  }
  store->submit(WriteBatch{}, nullptr);  // an empty batch and no completion are fine
  store->flush();
  CHECK(failures == 0);
  REQUIRE(done.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(done[static_cast<std::size_t>(i)] == i);
  CHECK(load_all(*store).messages.size() == 200);
}
