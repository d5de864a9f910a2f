// SubscriptionMap: the std::map operations a session uses, over a sorted vector.
#include "core/subscription_map.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

using broker::core::SubscriptionMap;
using broker::core::SubscriptionOptions;

namespace {
SubscriptionOptions qos(std::uint8_t q) {
  SubscriptionOptions o;
  o.qos = q;
  return o;
}
std::vector<std::string> filters(const SubscriptionMap& m) {
  std::vector<std::string> out;
  for (const auto& [filter, options] : m) out.push_back(filter);
  return out;
}
}  // namespace

TEST_CASE("subscription map: empty") {
  SubscriptionMap m;
  CHECK(m.empty());
  CHECK(m.size() == 0);
  CHECK(m.find("a/b") == m.end());
  CHECK_FALSE(m.contains("a/b"));
  CHECK(filters(m).empty());
}

TEST_CASE("subscription map: operator[] inserts or replaces, iteration is sorted") {
  SubscriptionMap m;
  m["fleet/eu/VIN2/cmd"] = qos(1);
  m["fleet/eu/VIN1/cmd"] = qos(0);
  m["#"] = qos(2);
  m["fleet/eu/VIN2/cmd"] = qos(2);  // replaces
  CHECK(m.size() == 3);
  CHECK(filters(m) == std::vector<std::string>{"#", "fleet/eu/VIN1/cmd", "fleet/eu/VIN2/cmd"});
  CHECK(m.find("fleet/eu/VIN2/cmd")->second == qos(2));
  CHECK(m.contains("#"));
  CHECK_FALSE(m.contains("fleet/eu/VIN3/cmd"));
  CHECK_FALSE(m.contains("fleet/eu/VIN1"));  // a prefix is another filter
}

TEST_CASE("subscription map: emplace keeps an existing entry") {
  SubscriptionMap m;
  CHECK(m.emplace("a/+", qos(1)).second);
  auto [it, inserted] = m.emplace("a/+", qos(2));
  CHECK_FALSE(inserted);
  CHECK(it->second == qos(1));
  CHECK(m.emplace("0", qos(0)).second);
  CHECK(filters(m) == std::vector<std::string>{"0", "a/+"});
}

TEST_CASE("subscription map: erase, and clear") {
  SubscriptionMap m;
  m["b"] = qos(1);
  m["a"] = qos(1);
  m["c"] = qos(1);
  auto next = m.erase(m.find("b"));
  REQUIRE(next != m.end());
  CHECK(next->first == "c");
  CHECK(filters(m) == std::vector<std::string>{"a", "c"});
  m.erase(m.find("a"));
  auto last = m.erase(m.find("c"));
  CHECK(last == m.end());
  CHECK(m.empty());
  m["x"] = qos(0);
  m.clear();
  CHECK(m.empty());
  CHECK(m.find("x") == m.end());
}
