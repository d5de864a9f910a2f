// Retained messages (MQTT 5.0 3.3.1.3, 3.3.2.3.3, 4.7).
#include "core/retained_store.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using broker::core::Message;
using broker::core::MessagePtr;
using broker::core::RetainedStore;
using Result = RetainedStore::SetResult;

namespace {

MessagePtr msg(std::string topic, std::string payload = "x", std::uint64_t expires_at_ms = 0,
               std::uint64_t id = 0, broker::Durability durability = broker::Durability::Durable) {
  auto m = Message::create(topic, "", nullptr);
  m->payload = broker::protocol::Payload::copy_of(payload);
  m->retain = true;
  m->expires_at_ms = expires_at_ms;
  m->id = id;
  m->durability = durability;
  return m;
}

// What one walk of `filter` meets, whole.
std::vector<MessagePtr> matched(RetainedStore& store, std::string_view filter, std::uint64_t now_ms = 0) {
  std::vector<MessagePtr> out;
  store.walk(*store.start_walk(filter), now_ms, ~std::size_t{0}, out);
  return out;
}

std::vector<std::string> topics(RetainedStore& store, std::string_view filter,
                                std::uint64_t now_ms = 0) {
  const std::vector<MessagePtr> out = matched(store, filter, now_ms);
  std::vector<std::string> t;
  for (const auto& m : out) t.emplace_back(m->topic());
  std::sort(t.begin(), t.end());
  return t;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("retained: a retained message is stored under its topic [MQTT-3.3.1-5]") {
  RetainedStore store;
  CHECK(store.set(msg("a/b")) == Result::Stored);
  CHECK(store.size() == 1);
  CHECK(topics(store, "a/b") == V{"a/b"});
  CHECK(topics(store, "a").empty());
  CHECK(topics(store, "a/b/c").empty());
}

TEST_CASE("retained: a new message replaces the previous one [MQTT-3.3.1-5]") {
  RetainedStore store;
  auto first = msg("a/b", "1");
  auto second = msg("a/b", "2");
  CHECK(store.set(first) == Result::Stored);
  CHECK(store.set(second) == Result::Replaced);
  CHECK(store.size() == 1);
  const std::vector<MessagePtr> out = matched(store, "a/b");
  REQUIRE(out.size() == 1);
  CHECK(out[0] == second);
}

TEST_CASE("retained: an empty payload removes the retained message [MQTT-3.3.1-6]") {
  RetainedStore store;
  CHECK(store.set(msg("a/b")) == Result::Stored);
  CHECK(store.set(msg("a/b", "")) == Result::Cleared);
  CHECK(store.size() == 0);
  CHECK(topics(store, "#").empty());
  CHECK(store.set(msg("a/b", "")) == Result::NothingToClear);
}

TEST_CASE("retained: an empty payload is never stored [MQTT-3.3.1-7]") {
  RetainedStore store;
  CHECK(store.set(msg("a/b", "")) == Result::NothingToClear);
  CHECK(store.size() == 0);
  CHECK(topics(store, "a/b").empty());
  MessagePtr null_payload = Message::create("a/c", "", nullptr);
  CHECK(store.set(null_payload) == Result::NothingToClear);
  CHECK(store.size() == 0);
}

TEST_CASE("retained: clearing a topic keeps its ancestors and descendants") {
  RetainedStore store;
  REQUIRE(store.set(msg("a")) == Result::Stored);
  REQUIRE(store.set(msg("a/b")) == Result::Stored);
  REQUIRE(store.set(msg("a/b/c")) == Result::Stored);
  CHECK(store.set(msg("a/b", "")) == Result::Cleared);
  CHECK(topics(store, "#") == V{"a", "a/b/c"});
  CHECK(store.set(msg("a/b/c", "")) == Result::Cleared);
  CHECK(topics(store, "#") == V{"a"});
  CHECK(store.set(msg("a/b/c")) == Result::Stored);  // the pruned path is rebuilt
  CHECK(topics(store, "a/+/c") == V{"a/b/c"});
}

TEST_CASE("retained: wildcard filters walk the matching branches (4.7.1)") {
  RetainedStore store;
  for (const char* t : {"sport", "sport/", "sport/tennis", "sport/tennis/player1",
                        "sport/tennis/player1/ranking", "sport/golf/player1", "/finance",
                        "finance", "sports"}) {
    REQUIRE(store.set(msg(t)) == Result::Stored);
  }
  CHECK(topics(store, "sport/#") == V{"sport", "sport/", "sport/golf/player1", "sport/tennis",
                                      "sport/tennis/player1", "sport/tennis/player1/ranking"});
  CHECK(topics(store, "sport/+") == V{"sport/", "sport/tennis"});
  CHECK(topics(store, "sport/+/player1") == V{"sport/golf/player1", "sport/tennis/player1"});
  CHECK(topics(store, "sport/tennis/player1/#") ==
        V{"sport/tennis/player1", "sport/tennis/player1/ranking"});
  CHECK(topics(store, "+") == V{"finance", "sport", "sports"});
  CHECK(topics(store, "+/+") == V{"/finance", "sport/", "sport/tennis"});
  CHECK(topics(store, "/+") == V{"/finance"});
  CHECK(topics(store, "#").size() == 9);
  CHECK(topics(store, "+/#").size() == 9);
  CHECK(topics(store, "nothing/#").empty());
}

TEST_CASE("retained: first-level wildcards skip '$' topics [MQTT-4.7.2-1]") {
  RetainedStore store;
  REQUIRE(store.set(msg("$SYS/monitor/Clients")) == Result::Stored);
  REQUIRE(store.set(msg("$SYS")) == Result::Stored);
  REQUIRE(store.set(msg("a/$b")) == Result::Stored);
  CHECK(topics(store, "#") == V{"a/$b"});
  CHECK(topics(store, "+/monitor/Clients").empty());
  CHECK(topics(store, "+").empty());
  CHECK(topics(store, "$SYS/#") == V{"$SYS", "$SYS/monitor/Clients"});
  CHECK(topics(store, "$SYS/monitor/+") == V{"$SYS/monitor/Clients"});
  CHECK(topics(store, "a/+") == V{"a/$b"});  // only the first level is special
}

TEST_CASE("retained: expired messages are not returned and are dropped lazily") {
  RetainedStore store;
  REQUIRE(store.set(msg("a/expiring", "x", 1000)) == Result::Stored);
  REQUIRE(store.set(msg("a/forever")) == Result::Stored);
  CHECK(topics(store, "a/+", 999) == V{"a/expiring", "a/forever"});
  CHECK(store.size() == 2);
  CHECK(topics(store, "a/+", 1000) == V{"a/forever"});
  CHECK(store.size() == 1);  // met expired, so dropped
  CHECK(topics(store, "a/+", 0) == V{"a/forever"});
}

TEST_CASE("retained: a Message Expiry Interval of 0 replaces the retained message and keeps none") {
  RetainedStore store;
  REQUIRE(store.set(msg("cfg")) == Result::Stored);
  const auto zero = msg("cfg", "now", broker::core::expiry_deadline(0, 0));  // arrived at 0
  CHECK(store.set(zero) == Result::Cleared);
  CHECK(store.size() == 0);
  CHECK(store.set(zero) == Result::NothingToClear);
}

TEST_CASE("retained: expired messages do not hold places in a full store; take_expired names them") {
  RetainedStore store(2);
  REQUIRE(store.set(msg("a/old", "x", 1500, 11), 0) == Result::Stored);
  REQUIRE(store.set(msg("b/old", "x", 1500, 12, broker::Durability::Memory), 0) == Result::Stored);
  CHECK(store.set(msg("c/new"), 1000) == Result::Full);  // purged, but nothing had expired
  CHECK(store.set(msg("c/new"), 1999) == Result::Full);  // expired, but one purge a second
  CHECK(store.set(msg("c/new"), 2000) == Result::Stored);
  CHECK(topics(store, "#", 2000) == V{"c/new"});
  const auto expired = store.take_expired();  // the memory-only one has no record
  REQUIRE(expired.size() == 1);
  CHECK((expired[0].topic == "a/old" && expired[0].id == 11));
  CHECK(store.take_expired().empty());
}

TEST_CASE("retained: purge_expired removes every expired message and prunes its branch") {
  RetainedStore store;
  REQUIRE(store.set(msg("a/b/c", "x", 1000)) == Result::Stored);
  REQUIRE(store.set(msg("a/b", "x", 2000)) == Result::Stored);
  REQUIRE(store.set(msg("d", "x", 3000)) == Result::Stored);
  REQUIRE(store.set(msg("e")) == Result::Stored);
  CHECK(store.purge_expired(500) == 0);
  CHECK(store.purge_expired(2000) == 2);
  CHECK(store.size() == 2);
  CHECK(topics(store, "#", 2000) == V{"d", "e"});
  CHECK(store.purge_expired(10000) == 1);
  CHECK(topics(store, "#", 10000) == V{"e"});
  // A replaced message takes the new expiry.
  REQUIRE(store.set(msg("e", "y", 20000)) == Result::Replaced);
  CHECK(store.purge_expired(19990) == 0);
  CHECK(store.purge_expired(20000) == 1);
  CHECK(store.size() == 0);
}

TEST_CASE("retained: past max_messages new topics are refused, replacements still work") {
  RetainedStore store(2);
  CHECK(store.set(msg("a")) == Result::Stored);
  CHECK(store.set(msg("b")) == Result::Stored);
  CHECK(store.set(msg("c")) == Result::Full);
  CHECK(store.set(msg("c/d")) == Result::Full);
  CHECK(store.size() == 2);
  CHECK(topics(store, "#") == V{"a", "b"});
  CHECK(store.set(msg("a", "new")) == Result::Replaced);
  CHECK(store.set(msg("b", "")) == Result::Cleared);
  CHECK(store.set(msg("c")) == Result::Stored);
}

TEST_CASE("retained: past max_bytes a message is refused, a growing replacement too; clears and expiry give bytes back") {
  RetainedStore store(100, 30);  // bytes: the payload plus the topic, here
  CHECK(store.set(msg("a", "123456789")) == Result::Stored);   // 10
  CHECK(store.set(msg("b", "123456789")) == Result::Stored);   // 20
  CHECK(store.bytes() == 20);
  CHECK(store.refuses(*msg("c", "12345678901"), 0));           // 20 + 12 > 30
  CHECK(store.set(msg("c", "12345678901")) == Result::Full);
  CHECK(store.set(msg("c", "123456789")) == Result::Stored);   // exactly 30
  CHECK(store.set(msg("a", "1234567890")) == Result::Full);    // a replacement that grows past
  CHECK(store.refuses(*msg("a", "1234567890"), 0));
  CHECK(store.set(msg("a", "1")) == Result::Replaced);         // one that shrinks
  CHECK(store.bytes() == 22);
  CHECK(store.set(msg("a", "123456789")) == Result::Replaced); // back to 30
  CHECK(topics(store, "#") == V{"a", "b", "c"});
  CHECK(store.set(msg("b", "")) == Result::Cleared);
  CHECK(store.bytes() == 20);
  CHECK(store.set(msg("d", "12", 1500)) == Result::Stored);    // 23, expires at 1500
  CHECK(store.set(msg("e", "1234567")) == Result::Full);       // 31 until d's expiry is purged
  CHECK(store.set(msg("e", "1234567"), 1500) == Result::Stored);
  CHECK(store.bytes() == 28);
  CHECK(topics(store, "#", 1500) == V{"a", "c", "e"});
  CHECK(store.purge_expired(1500) == 0);
  CHECK(store.set(msg("f", std::string(40, 'x'))) == Result::Full);  // larger than the bound alone
  CHECK(store.size() == 3);
}

TEST_CASE("retained: many siblings (hash-table children) match and clear") {
  RetainedStore store(100000);
  for (int i = 0; i < 5000; ++i) {
    REQUIRE(store.set(msg("fleet/" + std::to_string(i) + "/state")) == Result::Stored);
  }
  CHECK(topics(store, "fleet/+/state").size() == 5000);
  CHECK(topics(store, "fleet/4999/#") == V{"fleet/4999/state"});
  for (int i = 0; i < 5000; i += 2) {
    REQUIRE(store.set(msg("fleet/" + std::to_string(i) + "/state", "")) == Result::Cleared);
  }
  CHECK(store.size() == 2500);
  CHECK(topics(store, "fleet/+/state").size() == 2500);
  CHECK(topics(store, "fleet/10/state").empty());
  CHECK(topics(store, "fleet/11/state") == V{"fleet/11/state"});
}

TEST_CASE("retained: very deep topics don't exhaust the stack") {
  RetainedStore store;
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "a/";
  deep += "z";
  REQUIRE(store.set(msg(deep)) == Result::Stored);
  CHECK(topics(store, "#").size() == 1);
  CHECK(store.purge_expired(1) == 0);
}

namespace {
// What a walk in steps of at most `budget` nodes meets, as sorted topics.
V walked(RetainedStore& store, std::string_view filter, std::size_t budget) {
  auto walk = store.start_walk(filter);
  std::vector<MessagePtr> out;
  while (!walk->done()) store.walk(*walk, 0, budget, out);
  V t;
  for (const auto& m : out) t.emplace_back(m->topic());
  std::sort(t.begin(), t.end());
  return t;
}
}  // namespace

TEST_CASE("retained: a walk in steps meets what one match does, a level of thousands in slices") {
  RetainedStore store;
  for (int i = 0; i < 10000; ++i) store.set(msg("v/" + std::to_string(i) + "/s"));
  store.set(msg("v"));
  store.set(msg("v/7"));
  store.set(msg("$SYS/x"));
  for (const char* filter : {"#", "v/#", "+/+/s", "v/+/s", "+/#", "+", "v/7", "$SYS/#", "+/7"}) {
    CAPTURE(filter);
    const V whole = topics(store, filter);
    for (std::size_t budget : {1, 7, 1000, 100000}) CHECK(walked(store, filter, budget) == whole);
  }
  CHECK(topics(store, "#").size() == 10002);  // '$SYS' is not in '#' [MQTT-4.7.2-1]
}

TEST_CASE("retained: topics cleared and added while a walk is under way; it meets each one kept once") {
  RetainedStore store(100000);
  const int n = 20000;
  for (int i = 0; i < n; ++i) store.set(msg("v/" + std::to_string(i)));
  auto walk = store.start_walk("v/+");
  std::vector<MessagePtr> out;
  store.walk(*walk, 0, 3000, out);  // into the level's slices
  for (int i = 0; i < n; i += 2) store.set(msg("v/" + std::to_string(i), ""));  // half cleared
  for (int i = 0; i < 30000; ++i) store.set(msg("v/new" + std::to_string(i)));  // the level grows
  auto again = store.start_walk("v/#");  // a second walk over the changed trie
  std::vector<MessagePtr> second;
  while (!walk->done() || !again->done()) {
    store.walk(*walk, 0, 500, out);
    store.walk(*again, 0, 500, second);
    if (out.size() % 7 == 0) store.set(msg("v/1", "replaced"));
  }
  walk.reset();  // frees what was taken out meanwhile (AddressSanitizer checks the reads)
  std::map<std::string, int> seen;
  for (const auto& m : out) ++seen[std::string(m->topic())];
  for (int i = 1; i < n; i += 2) CHECK(seen["v/" + std::to_string(i)] == 1);
  for (const auto& [topic, count] : seen) CHECK(count == 1);
  // The second walk began after the changes: exactly what the store holds.
  V second_topics;
  for (const auto& m : second) second_topics.emplace_back(m->topic());
  std::sort(second_topics.begin(), second_topics.end());
  CHECK(second_topics == topics(store, "v/#"));
  CHECK(second_topics.size() == static_cast<std::size_t>(n / 2 + 30000));
}
