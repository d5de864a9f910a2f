// tests/support/faulty_store: the failures it injects, over the memory and the LMDB store.
#include "support/faulty_store.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "unit/storage/store_test_util.hpp"

namespace {

using namespace broker;
using broker::test::FaultyStore;
using broker::test::load_all;
using broker::test::make_message;
using broker::test::TempDir;

StorePtr inner_store(bool lmdb, const TempDir& dir) {
  if (!lmdb) return make_memory_store();
  LmdbStoreOptions o;
  o.dir = dir.path();
  o.sync = false;
  auto r = open_lmdb_store(o);
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

WriteBatch put(std::uint64_t id) {
  WriteBatch b;
  b.put_message(make_message(id));
  return b;
}

}  // namespace

TEST_CASE("faulty store: fails the nth batch, then every batch from n on", "[storage]") {
  for (bool lmdb : {false, true}) {
    TempDir dir;
    FaultyStore store(inner_store(lmdb, dir));
    store.fail_nth(2, Status::io_error("disk on fire"));
    store.fail_from(4, Status::unavailable("store full"));
    std::vector<std::string> results;  // completions run one at a time; read after flush()
    for (std::uint64_t i = 1; i <= 5; ++i) {
      store.submit(put(i), [&results](const Status& st) { results.push_back(st.to_string()); });
    }
    store.flush();
    CHECK(results == std::vector<std::string>{"OK", "IoError: disk on fire", "OK",
                                              "Unavailable: store full", "Unavailable: store full"});
    CHECK(store.failed() == 3);
    CHECK(store.submitted() == 5);
    auto c = load_all(store);
    REQUIRE(c.messages.size() == 2);  // failed batches were not applied
    CHECK(c.messages[0].id == 1);
    CHECK(c.messages[1].id == 3);

    store.clear_faults();
    store.submit(put(6), nullptr);
    store.flush();
    CHECK(load_all(store).messages.size() == 3);
  }
}

TEST_CASE("faulty store: held batches are released in order or dropped unacknowledged",
          "[storage]") {
  for (bool lmdb : {false, true}) {
    TempDir dir;
    FaultyStore store(inner_store(lmdb, dir));
    std::vector<std::uint64_t> acked;
    auto ack = [&acked](std::uint64_t id) {
      return [&acked, id](const Status& st) {
        if (st) acked.push_back(id);
      };
    };
    store.submit(put(1), ack(1));
    store.flush();
    store.hold_writes(true);
    store.submit(put(2), ack(2));
    store.submit(put(3), ack(3));
    store.flush();
    CHECK(acked == std::vector<std::uint64_t>{1});
    store.release_held();
    store.flush();
    CHECK(acked == std::vector<std::uint64_t>{1, 2, 3});

    store.submit(put(4), ack(4));
    store.submit(put(5), ack(5));
    CHECK(store.drop_unsynced() == 2);  // the "crash"
    store.hold_writes(false);
    store.flush();
    CHECK(acked == std::vector<std::uint64_t>{1, 2, 3});
    // Exactly what was acknowledged is stored: nothing more, nothing less.
    auto c = load_all(store);
    REQUIRE(c.messages.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(c.messages[i].id == acked[i]);
  }
}

TEST_CASE("faulty store: a completion may submit again (memory store completes inline)",
          "[storage]") {
  FaultyStore store(make_memory_store());
  int done = 0;
  store.submit(put(1), [&](const Status&) {
    ++done;
    store.submit(put(2), [&](const Status&) { ++done; });
  });
  CHECK(done == 2);
  CHECK(load_all(store).messages.size() == 2);
}
