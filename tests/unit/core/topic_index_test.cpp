// The topic index: matching (MQTT 5.0 4.7), subscription replacement and removal (3.8.4,
// 3.10.4), shared subscriptions (4.8.2) and concurrent readers.
#include "core/topic_index.hpp"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/topic.hpp"

using broker::core::Match;
using broker::core::SharedPolicy;
using broker::core::Subscriber;
using broker::core::SubscriberKey;
using broker::core::SubscriberPtr;
using broker::core::SubscriptionOptions;
using broker::core::TopicIndex;

namespace {

SubscriberPtr sub(std::uint64_t id, std::uint32_t worker = 0, bool connected = true) {
  auto s = make_subscriber(SubscriberKey{worker, id});
  s->connected = connected;
  return s;
}

SubscriptionOptions qos(std::uint8_t q, std::uint32_t id = 0) {
  SubscriptionOptions o;
  o.qos = q;
  o.subscription_id = id;
  return o;
}

std::vector<Match> match(const TopicIndex& index, std::string_view topic, unsigned slot = 0) {
  std::vector<Match> out;
  index.match(slot, topic, out);
  return out;
}

// Session ids of the matches, sorted.
std::vector<std::uint64_t> ids(const std::vector<Match>& m) {
  std::vector<std::uint64_t> v;
  for (const auto& x : m) v.push_back(x.key.session_id);
  std::sort(v.begin(), v.end());
  return v;
}

using Ids = std::vector<std::uint64_t>;

std::size_t heap_in_use() { return mallinfo2().uordblks; }

}  // namespace

TEST_CASE("topic index: exact filters match only their topic") {
  TopicIndex index(1);
  auto a = sub(1);
  CHECK(index.subscribe(a, "sport/tennis", qos(1)));
  CHECK(index.subscription_count() == 1);
  auto m = match(index, "sport/tennis");
  REQUIRE(m.size() == 1);
  CHECK(m[0].key == SubscriberKey{0, 1});
  CHECK(m[0].options == qos(1));
  CHECK_FALSE(m[0].shared);
  CHECK(match(index, "sport").empty());
  CHECK(match(index, "sport/tennis/").empty());
  CHECK(match(index, "Sport/tennis").empty());
}

TEST_CASE("topic index: filters with and without wildcards match one topic together") {
  // Filters without wildcards are kept apart from the trie; a match must see both.
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "a/b", qos(1)));
  REQUIRE(index.subscribe(sub(2), "a/+", {}));
  REQUIRE(index.subscribe(sub(3), "#", {}));
  REQUIRE(index.subscribe(sub(4), "$share/g/a/b", {}));
  REQUIRE(index.subscribe(sub(5), "a/b/c", {}));
  REQUIRE(index.subscribe(sub(6), "$SYS/x", {}));
  CHECK(ids(match(index, "a/b")) == Ids{1, 2, 3, 4});
  CHECK(ids(match(index, "a/b/c")) == Ids{3, 5});
  CHECK(ids(match(index, "a")) == Ids{3});
  CHECK(ids(match(index, "$SYS/x")) == Ids{6});  // an exact filter names a '$' topic
  // A topic name with a wildcard (never valid) matches no filter literally.
  REQUIRE(index.subscribe(sub(7), "a/#", {}));
  CHECK(ids(match(index, "a/#")) == Ids{2, 3, 7});
  REQUIRE(index.unsubscribe({0, 2}, "a/+"));
  REQUIRE(index.unsubscribe({0, 3}, "#"));
  REQUIRE(index.unsubscribe({0, 4}, "$share/g/a/b"));
  REQUIRE(index.unsubscribe({0, 7}, "a/#"));
  CHECK(ids(match(index, "a/b")) == Ids{1});  // the trie is empty again
  CHECK_FALSE(index.unsubscribe({0, 2}, "a/b"));  // another session's exact filter
  CHECK(ids(match(index, "a/b")) == Ids{1});
  REQUIRE(index.unsubscribe({0, 1}, "a/b"));
  CHECK(match(index, "a/b").empty());
  CHECK(index.subscription_count() == 2);
}

TEST_CASE("topic index: tens of thousands of exact filters, each found alone") {
  // Enough filters that every shard of the exact hash goes from one inline child to a table
  // and back (growth, backward-shift deletion, shrinking).
  TopicIndex index(1);
  constexpr std::uint64_t kFilters = 60000;
  std::vector<SubscriberPtr> subs;
  for (std::uint64_t i = 0; i < 100; ++i) subs.push_back(sub(i));
  auto filter = [](std::uint64_t i) { return "v/" + std::to_string(i) + "/c"; };
  for (std::uint64_t i = 0; i < kFilters; ++i) REQUIRE(index.subscribe(subs[i % 100], filter(i), {}));
  for (std::uint64_t i = 0; i < kFilters; i += 7) REQUIRE(ids(match(index, filter(i))) == Ids{i % 100});
  for (std::uint64_t i = 1; i < kFilters; i += 2) REQUIRE(index.unsubscribe({0, i % 100}, filter(i)));
  for (std::uint64_t i = 0; i < kFilters; i += 3) {
    REQUIRE(match(index, filter(i)).size() == (i % 2 == 0 ? 1u : 0u));
  }
  CHECK(index.subscription_count() == kFilters / 2);
  for (std::uint64_t i = 0; i < kFilters; i += 2) REQUIRE(index.unsubscribe({0, i % 100}, filter(i)));
  CHECK(index.subscription_count() == 0);
  CHECK(match(index, filter(0)).empty());
  for (const auto& s : subs) CHECK(s.use_count() == 1);
}

TEST_CASE("topic index: '#' matches the parent and every level below [MQTT-4.7.1-1]") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "sport/tennis/player1/#", {}));
  REQUIRE(index.subscribe(sub(2), "sport/#", {}));
  REQUIRE(index.subscribe(sub(3), "#", {}));
  CHECK(ids(match(index, "sport/tennis/player1")) == Ids{1, 2, 3});
  CHECK(ids(match(index, "sport/tennis/player1/ranking")) == Ids{1, 2, 3});
  CHECK(ids(match(index, "sport/tennis/player1/score/wimbledon")) == Ids{1, 2, 3});
  CHECK(ids(match(index, "sport")) == Ids{2, 3});
  CHECK(ids(match(index, "sports")) == Ids{3});
  CHECK(ids(match(index, "/")) == Ids{3});
}

TEST_CASE("topic index: '+' matches one level, empty ones too [MQTT-4.7.1-2]") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "sport/tennis/+", {}));
  REQUIRE(index.subscribe(sub(2), "sport/+", {}));
  REQUIRE(index.subscribe(sub(3), "+/+", {}));
  REQUIRE(index.subscribe(sub(4), "/+", {}));
  REQUIRE(index.subscribe(sub(5), "+", {}));
  CHECK(ids(match(index, "sport/tennis/player1")) == Ids{1});
  CHECK(ids(match(index, "sport/tennis/player1/ranking")).empty());
  CHECK(ids(match(index, "sport")) == Ids{5});
  CHECK(ids(match(index, "sport/")) == Ids{2, 3});
  CHECK(ids(match(index, "/finance")) == Ids{3, 4});
}

TEST_CASE("topic index: first-level wildcards don't match '$' topics [MQTT-4.7.2-1]") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "#", {}));
  REQUIRE(index.subscribe(sub(2), "+/monitor/Clients", {}));
  REQUIRE(index.subscribe(sub(3), "$SYS/#", {}));
  REQUIRE(index.subscribe(sub(4), "$SYS/monitor/+", {}));
  REQUIRE(index.subscribe(sub(5), "$share/g/#", {}));
  REQUIRE(index.subscribe(sub(6), "a/+", {}));
  CHECK(ids(match(index, "$SYS/monitor/Clients")) == Ids{3, 4});
  CHECK(ids(match(index, "$SYS")) == Ids{3});
  CHECK(ids(match(index, "x/monitor/Clients")) == Ids{1, 2, 5});
  CHECK(ids(match(index, "a/$b")) == Ids{1, 5, 6});
}

TEST_CASE("topic index: overlapping subscriptions of one session give one Match each") {
  // The router folds them: highest QoS [MQTT-3.3.4-2], every Subscription Identifier
  // [MQTT-3.3.4-3]; so the index reports each one with its own options.
  TopicIndex index(1);
  auto a = sub(7);
  REQUIRE(index.subscribe(a, "a/b", qos(0, 1)));
  REQUIRE(index.subscribe(a, "a/+", qos(1, 2)));
  REQUIRE(index.subscribe(a, "a/#", qos(2, 3)));
  REQUIRE(index.subscribe(a, "#", qos(1, 4)));
  auto m = match(index, "a/b");
  REQUIRE(m.size() == 4);
  std::vector<std::uint32_t> sub_ids;
  for (const auto& x : m) {
    CHECK(x.key == a->key);
    sub_ids.push_back(x.options.subscription_id);
  }
  std::sort(sub_ids.begin(), sub_ids.end());
  CHECK(sub_ids == std::vector<std::uint32_t>{1, 2, 3, 4});
  CHECK(index.subscription_count() == 4);
}

TEST_CASE("topic index: subscribing again to the same filter replaces it [MQTT-3.8.4-3]") {
  TopicIndex index(1);
  auto a = sub(1);
  CHECK(index.subscribe(a, "a/+", qos(0)));
  CHECK_FALSE(index.subscribe(a, "a/+", qos(2, 9)));
  CHECK(index.subscription_count() == 1);
  auto m = match(index, "a/x");
  REQUIRE(m.size() == 1);
  CHECK(m[0].options == qos(2, 9));
  m.clear();  // a Match holds a reference to its subscriber
  // A new Subscriber object for the same session replaces the old one too.
  auto a2 = sub(1);
  CHECK_FALSE(index.subscribe(a2, "a/+", qos(1)));
  CHECK(a.use_count() == 1);
}

TEST_CASE("topic index: unsubscribe compares filters character by character [MQTT-3.10.4-1]") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "a/+", {}));
  CHECK_FALSE(index.unsubscribe({0, 1}, "a/b"));
  CHECK_FALSE(index.unsubscribe({0, 1}, "a/#"));
  CHECK_FALSE(index.unsubscribe({0, 1}, "a/+/"));
  CHECK_FALSE(index.unsubscribe({0, 2}, "a/+"));  // another session's
  CHECK_FALSE(index.unsubscribe({1, 1}, "a/+"));  // same id, other worker
  CHECK(index.subscription_count() == 1);
  CHECK(index.unsubscribe({0, 1}, "a/+"));
  CHECK_FALSE(index.unsubscribe({0, 1}, "a/+"));
  CHECK(index.subscription_count() == 0);
  CHECK(match(index, "a/b").empty());
}

TEST_CASE("topic index: unsubscribe of an unknown or invalid filter is a no-op") {
  TopicIndex index(1);
  CHECK_FALSE(index.unsubscribe({0, 1}, "never/subscribed"));
  CHECK_FALSE(index.unsubscribe({0, 1}, "$share/g/never"));
  CHECK_FALSE(index.unsubscribe({0, 1}, "bad#"));
  CHECK_FALSE(index.unsubscribe({0, 1}, ""));
  CHECK(index.subscription_count() == 0);
}

TEST_CASE("topic index: invalid filters are refused without changing the index") {
  TopicIndex index(1);
  CHECK_FALSE(index.subscribe(sub(1), "", {}));
  CHECK_FALSE(index.subscribe(sub(1), "a/#/b", {}));
  CHECK_FALSE(index.subscribe(sub(1), "a+", {}));
  CHECK_FALSE(index.subscribe(sub(1), "$share/g", {}));
  CHECK_FALSE(index.subscribe(nullptr, "a", {}));
  CHECK(index.subscription_count() == 0);
}

TEST_CASE("topic index: unsubscribing keeps siblings, ancestors and descendants") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "a", {}));
  REQUIRE(index.subscribe(sub(2), "a/b", {}));
  REQUIRE(index.subscribe(sub(3), "a/b/c", {}));
  REQUIRE(index.subscribe(sub(4), "a/+/c", {}));
  REQUIRE(index.subscribe(sub(5), "a/#", {}));
  CHECK(index.unsubscribe({0, 2}, "a/b"));
  CHECK(ids(match(index, "a/b/c")) == Ids{3, 4, 5});
  CHECK(index.unsubscribe({0, 3}, "a/b/c"));
  CHECK(ids(match(index, "a/b/c")) == Ids{4, 5});
  CHECK(index.unsubscribe({0, 4}, "a/+/c"));
  CHECK(index.unsubscribe({0, 5}, "a/#"));
  // The '+' and '#' nodes are gone; matching must not reach them.
  CHECK(ids(match(index, "a/b/c")).empty());
  CHECK(ids(match(index, "a")) == Ids{1});
  REQUIRE(index.subscribe(sub(6), "a/#", {}));  // rebuilt after pruning
  CHECK(ids(match(index, "a")) == Ids{1, 6});
}

TEST_CASE("topic index: unsubscribing everything frees the trie (pruning)") {
  TopicIndex index(2);
  auto a = sub(1);
  auto cycle = [&] {
    for (int i = 0; i < 5000; ++i) {
      const std::string n = std::to_string(i);
      REQUIRE(index.subscribe(a, "fleet/" + n + "/cmd/" + n, {}));
      REQUIRE(index.subscribe(a, "$share/g" + n + "/fleet/+/x", {}));
    }
    REQUIRE(index.subscription_count() == 10000);
    REQUIRE(match(index, "fleet/1/cmd/1").size() == 1);
    for (int i = 0; i < 5000; ++i) {
      const std::string n = std::to_string(i);
      REQUIRE(index.unsubscribe(a->key, "fleet/" + n + "/cmd/" + n));
      REQUIRE(index.unsubscribe(a->key, "$share/g" + n + "/fleet/+/x"));
    }
    REQUIRE(index.subscription_count() == 0);
  };
  cycle();  // first-use allocations (scratch vectors, malloc's and Catch2's own) out of the way
  cycle();
  const std::size_t before = heap_in_use();
  for (int round = 0; round < 3; ++round) cycle();
  const std::size_t after = heap_in_use();
  // A leaked trie would be 5,000+ nodes a cycle; allow a page of allocator noise.
  if (before != 0) {  // sanitizers' allocators don't report through mallinfo2
    CHECK(after <= before + 4096);
  }
  CHECK(match(index, "fleet/1/cmd/1").empty());
  CHECK(match(index, "fleet/1/x").empty());
  CHECK(a.use_count() == 1);
}

TEST_CASE("topic index: large fan-out and many siblings") {
  TopicIndex index(1);
  std::vector<SubscriberPtr> subs;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    subs.push_back(sub(i));
    REQUIRE(index.subscribe(subs.back(), "broadcast", qos(1)));
    REQUIRE(index.subscribe(subs.back(), "device/" + std::to_string(i), qos(0)));
  }
  CHECK(match(index, "broadcast").size() == 2000);
  CHECK(ids(match(index, "device/1234")) == Ids{1234});
  for (std::uint64_t i = 0; i < 2000; i += 2) {
    REQUIRE(index.unsubscribe({0, i}, "broadcast"));
    REQUIRE(index.unsubscribe({0, i}, "device/" + std::to_string(i)));
  }
  auto m = ids(match(index, "broadcast"));
  REQUIRE(m.size() == 1000);
  CHECK(std::all_of(m.begin(), m.end(), [](std::uint64_t id) { return id % 2 == 1; }));
  CHECK(match(index, "device/1234").empty());
  CHECK(ids(match(index, "device/1235")) == Ids{1235});
  CHECK_FALSE(index.subscribe(subs[1], "broadcast", qos(2)));  // replace inside a big list
  for (const auto& x : match(index, "broadcast")) {
    CHECK(x.options.qos == (x.key.session_id == 1 ? 2 : 1));
  }
  CHECK(index.subscription_count() == 2000);
}

TEST_CASE("topic index: a subscriber list grows and shrinks through every representation") {
  // 1 inline, 2..32 an array, 33+ indexed; walk up and back down checking each step.
  TopicIndex index(1);
  std::vector<SubscriberPtr> subs;
  for (std::uint64_t i = 0; i < 40; ++i) {
    subs.push_back(sub(i));
    REQUIRE(index.subscribe(subs.back(), "t", qos(static_cast<std::uint8_t>(i % 3))));
    REQUIRE(match(index, "t").size() == i + 1);
  }
  for (std::uint64_t i = 0; i < 40; ++i) {
    // Remove from the middle, so swaps with the last entry are exercised.
    const std::uint64_t victim = (i * 7) % 40;
    REQUIRE(index.unsubscribe({0, victim}, "t"));
    REQUIRE_FALSE(index.unsubscribe({0, victim}, "t"));
    auto m = match(index, "t");
    REQUIRE(m.size() == 39 - i);
    for (const auto& x : m) {
      REQUIRE(x.options.qos == x.key.session_id % 3);
      REQUIRE_FALSE(index.subscribe(subs[x.key.session_id], "t", x.options));  // still found
    }
  }
  CHECK(index.subscription_count() == 0);
  for (const auto& s : subs) CHECK(s.use_count() == 1);
}

TEST_CASE("topic index: agrees with topic_matches on random filters and topics") {
  // Small alphabets so that wildcards, empty levels and '$' collide often.
  std::mt19937 rng(12345);
  const std::vector<std::string> levels = {"a", "b", "", "$s"};
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto random_topic = [&] {
    std::string t;
    const std::size_t depth = 1 + pick(4);
    for (std::size_t i = 0; i < depth; ++i) t += (i ? "/" : "") + levels[pick(levels.size())];
    return t.empty() ? std::string("/") : t;  // a name is at least one character
  };
  auto random_filter = [&] {
    std::string f;
    const std::size_t depth = 1 + pick(4);
    for (std::size_t i = 0; i < depth; ++i) {
      if (i) f += "/";
      const std::size_t r = pick(7);
      if (r == 0 && i + 1 == depth) {
        f += "#";
      } else if (r <= 2) {
        f += "+";
      } else {
        f += levels[pick(levels.size())];
      }
    }
    return f.empty() ? std::string("/") : f;
  };
  TopicIndex index(1);
  std::map<std::uint64_t, std::string> filters;
  for (std::uint64_t i = 0; i < 300; ++i) {
    auto f = random_filter();
    REQUIRE(broker::protocol::valid_topic_filter(f));
    REQUIRE(index.subscribe(sub(i), f, {}));
    filters[i] = f;
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 500; ++i) {
      auto t = random_topic();
      Ids expected;
      for (const auto& [id, f] : filters) {
        if (broker::protocol::topic_matches(f, t)) expected.push_back(id);
      }
      INFO("topic " << t);
      CHECK(ids(match(index, t)) == expected);
    }
    if (round == 1) break;
    // Second round: after removing every other subscription.
    for (std::uint64_t i = 0; i < 300; i += 2) {
      REQUIRE(index.unsubscribe({0, i}, filters[i]));
      filters.erase(i);
    }
  }
}

TEST_CASE("topic index: very deep filters and topics don't exhaust the stack") {
  TopicIndex index(1);
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "a/";
  REQUIRE(index.subscribe(sub(1), deep + "#", {}));
  REQUIRE(index.subscribe(sub(2), deep + "z", {}));
  CHECK(ids(match(index, deep + "z")) == Ids{1, 2});
  CHECK(index.unsubscribe({0, 2}, deep + "z"));
  CHECK(ids(match(index, deep + "z")) == Ids{1});
}

TEST_CASE("topic index: a shared group gets each message once, round robin (4.8.2)") {
  TopicIndex index(1, SharedPolicy::RoundRobin);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    REQUIRE(index.subscribe(sub(i), "$share/consumer1/sport/tennis/+", qos(1)));
  }
  CHECK(index.subscription_count() == 3);
  std::map<std::uint64_t, int> hits;
  for (int i = 0; i < 30; ++i) {
    auto m = match(index, "sport/tennis/player1");
    REQUIRE(m.size() == 1);
    CHECK(m[0].shared);
    ++hits[m[0].key.session_id];
  }
  CHECK(hits == std::map<std::uint64_t, int>{{1, 10}, {2, 10}, {3, 10}});
  // Consecutive messages go to different members.
  auto first = match(index, "sport/tennis/player1");
  auto second = match(index, "sport/tennis/player1");
  CHECK_FALSE(first[0].key == second[0].key);
}

TEST_CASE("topic index: shared groups are independent of each other and of plain subscriptions") {
  TopicIndex index(1);
  auto a = sub(1);
  auto b = sub(2);
  REQUIRE(index.subscribe(a, "$share/g1/x/#", qos(1)));
  REQUIRE(index.subscribe(b, "$share/g1/x/#", qos(1)));
  REQUIRE(index.subscribe(a, "$share/g2/x/#", qos(2)));
  REQUIRE(index.subscribe(a, "x/#", qos(0)));
  REQUIRE(index.subscribe(a, "$share/g1/x/y", qos(0)));  // same group name, other filter
  auto m = match(index, "x/y");
  CHECK(m.size() == 4);
  CHECK(std::count_if(m.begin(), m.end(), [](const Match& x) { return x.shared; }) == 3);
  CHECK(std::count_if(m.begin(), m.end(), [](const Match& x) { return !x.shared; }) == 1);
  CHECK(index.subscription_count() == 5);
  // Re-subscribing replaces the member's options.
  CHECK_FALSE(index.subscribe(a, "$share/g2/x/#", qos(0)));
  CHECK(index.subscription_count() == 5);
}

TEST_CASE("topic index: shared selection prefers connected members") {
  for (auto policy : {SharedPolicy::RoundRobin, SharedPolicy::Random}) {
    TopicIndex index(1, policy);
    std::vector<SubscriberPtr> members = {sub(1, 0, false), sub(2, 0, true), sub(3, 0, false)};
    for (const auto& s : members) REQUIRE(index.subscribe(s, "$share/g/t", {}));
    for (int i = 0; i < 20; ++i) CHECK(ids(match(index, "t")) == Ids{2});
    // Nobody connected: still delivered to one member (its session queues it).
    members[1]->connected = false;
    std::map<std::uint64_t, int> hits;
    for (int i = 0; i < 60; ++i) {
      auto m = match(index, "t");
      REQUIRE(m.size() == 1);
      ++hits[m[0].key.session_id];
    }
    CHECK(hits.size() >= 2);
  }
}

TEST_CASE("topic index: random shared selection reaches every member") {
  TopicIndex index(1, SharedPolicy::Random);
  for (std::uint64_t i = 1; i <= 4; ++i) REQUIRE(index.subscribe(sub(i), "$share/g/t", {}));
  std::map<std::uint64_t, int> hits;
  for (int i = 0; i < 400; ++i) ++hits[match(index, "t").at(0).key.session_id];
  REQUIRE(hits.size() == 4);
  for (const auto& [id, n] : hits) CHECK(n > 40);
}

TEST_CASE("topic index: pick_shared hands a departed member's QoS 1 messages to another (4.8.2)") {
  TopicIndex index(2);
  REQUIRE(index.subscribe(sub(1), "$share/g/a/+", qos(1)));
  REQUIRE(index.subscribe(sub(2, 0, false), "$share/g/a/+", qos(2)));
  REQUIRE(index.subscribe(sub(3), "$share/g/a/+", qos(0)));
  REQUIRE(index.subscribe(sub(4), "$share/solo/a/+", {}));
  Match out;
  for (int i = 0; i < 10; ++i) {
    REQUIRE(index.pick_shared(1, "g", "a/+", {0, 1}, out));
    CHECK(out.shared);
    CHECK(out.key == SubscriberKey{0, 3});  // 2 is offline, 1 excluded
    CHECK(out.options == qos(0));
  }
  REQUIRE(index.pick_shared(0, "g", "a/+", {0, 3}, out));
  CHECK(out.key == SubscriberKey{0, 1});
  CHECK_FALSE(index.pick_shared(0, "solo", "a/+", {0, 4}, out));  // no other member
  CHECK(index.pick_shared(0, "solo", "a/+", {0, 9}, out));
  CHECK_FALSE(index.pick_shared(0, "nope", "a/+", {0, 1}, out));
  CHECK_FALSE(index.pick_shared(0, "g", "a/b", {0, 1}, out));  // filter taken literally
  CHECK_FALSE(index.pick_shared(0, "g", "a", {0, 1}, out));
}

TEST_CASE("topic index: leaving a shared group removes the member, then the group") {
  TopicIndex index(1);
  REQUIRE(index.subscribe(sub(1), "$share/g/t", {}));
  REQUIRE(index.subscribe(sub(2), "$share/g/t", {}));
  CHECK_FALSE(index.unsubscribe({0, 1}, "t"));            // not a plain subscription
  CHECK_FALSE(index.unsubscribe({0, 1}, "$share/h/t"));   // not that group
  CHECK(index.unsubscribe({0, 1}, "$share/g/t"));
  for (int i = 0; i < 5; ++i) CHECK(ids(match(index, "t")) == Ids{2});
  CHECK(index.unsubscribe({0, 2}, "$share/g/t"));
  CHECK(match(index, "t").empty());
  Match out;
  CHECK_FALSE(index.pick_shared(0, "g", "t", {0, 7}, out));
  CHECK(index.subscription_count() == 0);
}

TEST_CASE("topic index: two readers match while a writer subscribes and unsubscribes") {
  TopicIndex index(2);
  auto stable = sub(1);
  REQUIRE(index.subscribe(stable, "vehicles/+/state", {}));
  REQUIRE(index.subscribe(sub(2), "$share/g/vehicles/#", {}));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto reader = [&](unsigned slot) {
    std::vector<Match> out;
    std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed) || n < 1000) {
      out.clear();
      index.match(slot, "vehicles/" + std::to_string(n % 50) + "/state", out);
      const bool has_stable = std::any_of(out.begin(), out.end(), [](const Match& m) {
        return m.key.session_id == 1 && !m.shared;
      });
      const auto shared = std::count_if(out.begin(), out.end(), [](const Match& m) {
        return m.shared;
      });
      if (!has_stable || shared != 1) failures.fetch_add(1);
      Match picked;
      if (index.pick_shared(slot, "g", "vehicles/#", {9, 9}, picked) && !picked.shared) {
        failures.fetch_add(1);
      }
      ++n;
    }
  };
  std::thread r0(reader, 0u);
  std::thread r1(reader, 1u);
  std::thread writer([&] {
    std::vector<SubscriberPtr> subs;
    for (std::uint64_t i = 0; i < 50; ++i) subs.push_back(sub(100 + i, 1, i % 2 == 0));
    for (int round = 0; round < 20; ++round) {
      for (std::uint64_t i = 0; i < 50; ++i) {
        const std::string v = std::to_string(i);
        (void)index.subscribe(subs[i], "vehicles/" + v + "/state", {});
        (void)index.subscribe(subs[i], "vehicles/" + v + "/#", {});
        (void)index.subscribe(subs[i], "$share/g/vehicles/#", {});
      }
      for (std::uint64_t i = 0; i < 50; ++i) {
        const std::string v = std::to_string(i);
        (void)index.unsubscribe(subs[i]->key, "vehicles/" + v + "/state");
        (void)index.unsubscribe(subs[i]->key, "vehicles/" + v + "/#");
        (void)index.unsubscribe(subs[i]->key, "$share/g/vehicles/#");
      }
    }
    stop = true;
  });
  writer.join();
  r0.join();
  r1.join();
  CHECK(failures.load() == 0);
  CHECK(index.subscription_count() == 2);
}

TEST_CASE("topic index: matches carry their Subscriber only when asked") {
  TopicIndex index(1);
  auto a = sub(1, 0);
  auto b = sub(2, 1);
  REQUIRE(index.subscribe(a, "v/+/cmd", qos(1, 5)));
  REQUIRE(index.subscribe(a, "v/#", qos(0)));
  REQUIRE(index.subscribe(b, "v/7/cmd", qos(2)));
  REQUIRE(index.subscribe(b, "$share/g/v/#", qos(1)));
  std::vector<Match> out;
  index.match(0, "v/7/cmd", out, false);
  REQUIRE(out.size() == 4);
  for (const auto& m : out) {
    if (m.shared) {
      CHECK(m.subscriber == b);  // choosing a member reads its flags: always there
    } else {
      CHECK(m.subscriber == nullptr);
    }
  }
  CHECK(ids(out) == Ids{1, 1, 2, 2});
  out.clear();
  index.match(0, "v/7/cmd", out, true);
  REQUIRE(out.size() == 4);
  for (const auto& m : out) CHECK(m.subscriber == (m.key.session_id == 1 ? a : b));
}

TEST_CASE("topic index: holds each Subscriber while an entry names it") {
  TopicIndex index(1);
  auto a = sub(1);
  REQUIRE(index.subscribe(a, "x/1", {}));
  REQUIRE(index.subscribe(a, "x/2", {}));
  CHECK(a.use_count() == 2);  // the test's and the index's, however many filters
  // A recreated Subscriber for the same session replaces the old one in that entry only.
  auto a2 = sub(1);
  CHECK_FALSE(index.subscribe(a2, "x/1", qos(1)));
  CHECK(a.use_count() == 2);
  CHECK(a2.use_count() == 2);
  std::vector<Match> out;
  index.match(0, "x/1", out, true);
  index.match(0, "x/2", out, true);
  REQUIRE(out.size() == 2);
  CHECK(out[0].subscriber == a2);
  CHECK(out[1].subscriber == a);
  out.clear();
  REQUIRE(index.unsubscribe(a2->key, "x/2"));
  CHECK(a.use_count() == 1);
  REQUIRE(index.unsubscribe(a2->key, "x/1"));
  CHECK(a2.use_count() == 1);
  CHECK_FALSE(index.unsubscribe(a2->key, "x/1"));
  CHECK(index.subscription_count() == 0);
}

TEST_CASE("topic index: a worker index above 16 bits is refused") {
  TopicIndex index(1);
  auto s = sub(1, 0x10000);
  CHECK_FALSE(index.subscribe(s, "t", {}));
  CHECK(match(index, "t").empty());
  auto ok = sub(2, 0xFFFF);
  REQUIRE(index.subscribe(ok, "t", {}));
  auto m = match(index, "t");
  REQUIRE(m.size() == 1);
  CHECK(m[0].key == ok->key);
}

TEST_CASE("topic index: readers match while a writer grows and shrinks child tables") {
  // Thousands of siblings take a level through inline, array and hash-table children (and the
  // table through growth and backward-shift deletion) while two readers check stable paths.
  TopicIndex index(2);
  std::vector<SubscriberPtr> stable;
  for (std::uint64_t i = 0; i < 16; ++i) {
    stable.push_back(sub(i));
    REQUIRE(index.subscribe(stable.back(), "fleet/" + std::to_string(i * 97) + "/cmd", qos(1)));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto reader = [&](unsigned slot) {
    std::vector<Match> out;
    for (std::uint64_t n = 0; !stop.load(std::memory_order_relaxed) || n < 1000; ++n) {
      const std::uint64_t i = n % 16;
      out.clear();
      index.match(slot, "fleet/" + std::to_string(i * 97) + "/cmd", out, n % 2 == 0);
      if (out.size() != 1 || out[0].key.session_id != i || out[0].options.qos != 1 ||
          (n % 2 == 0) != (out[0].subscriber != nullptr)) {
        failures.fetch_add(1);
      }
    }
  };
  std::thread r0(reader, 0u);
  std::thread r1(reader, 1u);
  std::thread writer([&] {
    std::vector<SubscriberPtr> churn;
    for (std::uint64_t i = 0; i < 3000; ++i) churn.push_back(sub(1000 + i, 1));
    for (int round = 0; round < 5; ++round) {
      // Filters without wildcards live in the exact shards, the '+' ones in the trie: both churn.
      for (std::uint64_t i = 0; i < churn.size(); ++i) {
        (void)index.subscribe(churn[i], "fleet/" + std::to_string(i * 97 + 1) + "/cmd", {});
        (void)index.subscribe(churn[i], "fleet/" + std::to_string(i * 97 + 1) + "/+", {});
      }
      for (std::uint64_t i = 0; i < churn.size(); ++i) {
        (void)index.unsubscribe(churn[i]->key, "fleet/" + std::to_string(i * 97 + 1) + "/cmd");
        (void)index.unsubscribe(churn[i]->key, "fleet/" + std::to_string(i * 97 + 1) + "/+");
      }
    }
    stop = true;
  });
  writer.join();
  r0.join();
  r1.join();
  CHECK(failures.load() == 0);
  CHECK(index.subscription_count() == 16);
}

TEST_CASE("topic index: match tells when its matches need no grouping by session") {
  TopicIndex index(1);
  for (std::uint64_t i = 0; i < 100; ++i) REQUIRE(index.subscribe(sub(i), "b/#", {}));
  std::vector<Match> out;
  CHECK(index.match(0, "b/x", out));  // one list: each session once
  CHECK(out.size() == 100);
  out.clear();
  CHECK(index.match(0, "nothing", out));
  REQUIRE(index.subscribe(sub(7), "b/x", {}));  // session 7 now twice
  CHECK_FALSE(index.match(0, "b/x", out));
  out.clear();
  CHECK(index.match(0, "b/y", out));
  out.clear();
  REQUIRE(index.subscribe(sub(500), "$share/g/b/y", {}));
  CHECK_FALSE(index.match(0, "b/y", out));
  out.clear();
  REQUIRE(index.unsubscribe({0, 7}, "b/x"));
  CHECK(index.match(0, "b/x", out));
}

TEST_CASE("topic index: destroying the index lets go of every Subscriber") {
  auto a = sub(1);
  auto b = sub(2);
  {
    TopicIndex index(1);
    REQUIRE(index.subscribe(a, "x/1", {}));
    REQUIRE(index.subscribe(a, "x/+", {}));
    REQUIRE(index.subscribe(b, "x/#", {}));
    REQUIRE(index.subscribe(b, "$share/g/x/1", {}));
    CHECK(a.use_count() == 2);
    CHECK(b.use_count() == 3);  // the index's plain hold and its shared member entry
  }
  CHECK(a.use_count() == 1);
  CHECK(b.use_count() == 1);
}
