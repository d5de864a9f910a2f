// LazyOrdered: behaves as the std::map / std::set it wraps, and holds no storage while empty.
#include "core/lazy_ordered.hpp"

#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>

using broker::core::LazyOrdered;

TEST_CASE("lazy ordered map: empty state answers like an empty map") {
  LazyOrdered<std::map<int, std::string>> m;
  CHECK(m.empty());
  CHECK(m.size() == 0);
  CHECK(m.begin() == m.end());
  CHECK(m.find(3) == m.end());
  CHECK_FALSE(m.contains(3));
  CHECK(m.erase(3) == 0);
  int visited = 0;
  for (const auto& entry : m) visited += entry.first;
  CHECK(visited == 0);
}

TEST_CASE("lazy ordered map: insert, find, ordered iteration, erase back to empty") {
  LazyOrdered<std::map<int, std::string>> m;
  CHECK(m.emplace(5, "five").second);
  CHECK(m.emplace(1, "one").second);
  CHECK_FALSE(m.emplace(5, "again").second);
  CHECK(m.size() == 2);
  CHECK(m.find(5)->second == "five");
  CHECK(m.contains(1));
  std::string order;
  for (const auto& [k, v] : m) order += v + " ";
  CHECK(order == "one five ");

  auto it = m.erase(m.find(1));
  REQUIRE(it != m.end());
  CHECK(it->first == 5);
  it = m.erase(it);
  CHECK(it == m.end());  // the storage is gone; end() is the shared empty one
  CHECK(m.empty());
  CHECK(m.begin() == m.end());
}

TEST_CASE("lazy ordered map: erase while iterating ends on the last erase") {
  LazyOrdered<std::map<int, int>> m;
  for (int i = 0; i < 10; ++i) m.emplace(i, i * i);
  int erased = 0;
  for (auto it = m.begin(); it != m.end();) {
    if (it->first % 2 == 0 || erased >= 5) {
      it = m.erase(it);
      ++erased;
    } else {
      ++it;
    }
  }
  CHECK(erased == 6);  // 0 2 4 6 8, then 9 (five were gone by then)
  CHECK(m.size() == 4);
  m.clear();
  CHECK(m.empty());
  for (int i = 0; i < 4; ++i) m.emplace(i, i);
  for (auto it = m.begin(); it != m.end();) it = m.erase(it);
  CHECK(m.empty());
  CHECK(m.size() == 0);
}

TEST_CASE("lazy ordered set: insert, contains, erase by key") {
  LazyOrdered<std::set<std::uint16_t>> s;
  CHECK(s.insert(std::uint16_t{7}).second);
  CHECK_FALSE(s.insert(std::uint16_t{7}).second);
  CHECK(s.insert(std::uint16_t{65535}).second);
  CHECK(s.contains(std::uint16_t{7}));
  CHECK(s.size() == 2);
  CHECK(s.erase(std::uint16_t{7}) == 1);
  CHECK(s.erase(std::uint16_t{7}) == 0);
  CHECK(s.erase(std::uint16_t{65535}) == 1);
  CHECK(s.empty());
  CHECK(s.begin() == s.end());
}

TEST_CASE("lazy ordered: costs one pointer") {
  STATIC_REQUIRE(sizeof(LazyOrdered<std::map<int, int>>) == sizeof(void*));
}
