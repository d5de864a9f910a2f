// Message: topic and origin in the message's own allocation, counted references, and the
// releaser told exactly once, only for a persisted message.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/message.hpp"

using broker::core::Message;
using broker::core::MessagePtr;
using broker::core::MessageRef;

namespace {

struct CountingReleaser final : broker::core::MessageReleaser {
  std::atomic<int> calls{0};
  std::uint64_t last_id = 0;
  void released(const Message& m) noexcept override {
    last_id = m.id;
    calls.fetch_add(1);
  }
};

}  // namespace

TEST_CASE("a message holds copies of its topic and origin client id", "[message]") {
  std::string topic = "vehicle/LSVAU2180N2183294/config";
  std::string origin = "platform-LSVAU2180N2183294";
  MessageRef m = Message::create(topic, origin, nullptr);
  topic.assign("changed");
  origin.clear();
  CHECK(m->topic() == "vehicle/LSVAU2180N2183294/config");
  CHECK(m->origin_client_id() == "platform-LSVAU2180N2183294");
  MessagePtr embedded = Message::create("a", "", nullptr);
  CHECK(embedded->topic() == "a");
  CHECK(embedded->origin_client_id().empty());
}

TEST_CASE("a message built then shared keeps one object; the last reference frees it", "[message]") {
  MessageRef building = Message::create("t", "c", nullptr);
  building->qos = 1;
  const Message* object = building.get();
  MessagePtr shared = std::move(building);
  CHECK_FALSE(building);
  CHECK(shared.get() == object);
  CHECK(shared.use_count() == 1);
  MessagePtr copy = shared;
  CHECK(shared.use_count() == 2);
  CHECK(copy == shared);
  copy.reset();
  CHECK(shared.use_count() == 1);
  CHECK(shared->qos == 1);
}

TEST_CASE("the releaser hears of a persisted message once, on the last drop", "[message]") {
  CountingReleaser releaser;
  {
    MessageRef m = Message::create("t", "c", &releaser);
    m->id = 42;
    m->persisted.store(true);
    MessagePtr shared = std::move(m);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([copy = shared] {
        for (int i = 0; i < 10000; ++i) {
          MessagePtr again = copy;
          (void)again->topic();
        }
      });
    }
    CHECK(releaser.calls.load() == 0);
    shared.reset();  // the last drop now happens on one of the threads
    for (auto& t : threads) t.join();
  }
  CHECK(releaser.calls.load() == 1);
  CHECK(releaser.last_id == 42);
  // Never persisted: nothing to delete in the store.
  { MessagePtr m = Message::create("t", "c", &releaser); }
  CHECK(releaser.calls.load() == 1);
}
