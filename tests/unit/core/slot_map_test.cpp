// SlotMap: ids find their object until erased, never a later occupant of the same slot.
#include "core/slot_map.hpp"

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

namespace {
struct Item {
  std::uint64_t id = 0;
  int value = 0;
};
struct ItemId {
  std::uint64_t operator()(const Item& i) const noexcept { return i.id; }
};
using Map = broker::core::SlotMap<Item, ItemId>;
}  // namespace

TEST_CASE("slot map: insert, find, erase") {
  Map map;
  Item a{0, 1}, b{0, 2};
  a.id = map.insert(&a);
  b.id = map.insert(&b);
  CHECK(a.id != 0);
  CHECK(a.id != b.id);
  CHECK(map.size() == 2);
  CHECK(map.find(a.id) == &a);
  CHECK(map.find(b.id) == &b);
  CHECK(map.find(0) == nullptr);
  CHECK(map.find(b.id + 7) == nullptr);  // a slot never used

  map.erase(a.id);
  CHECK(map.size() == 1);
  CHECK(map.find(a.id) == nullptr);
  CHECK(map.find(b.id) == &b);
}

TEST_CASE("slot map: a reused slot does not answer to the old id") {
  Map map;
  Item a;
  a.id = map.insert(&a);
  const std::uint64_t old = a.id;
  map.erase(old);
  Item c;
  c.id = map.insert(&c);
  CHECK(c.id != old);
  CHECK((c.id & 0xFFFFFFFFu) == (old & 0xFFFFFFFFu));  // same slot, next generation
  CHECK(map.find(old) == nullptr);
  CHECK(map.find(c.id) == &c);
}

TEST_CASE("slot map: insert first, set later (the id is needed to build the object)") {
  Map map;
  const std::uint64_t id = map.insert(nullptr);
  CHECK(map.find(id) == nullptr);
  CHECK(map.size() == 1);
  Item a{id, 5};
  map.set(id, &a);
  CHECK(map.find(id) == &a);
}

TEST_CASE("slot map: ids stay unique over many inserts and erases; for_each sees the live ones") {
  Map map;
  std::vector<std::unique_ptr<Item>> live;
  std::set<std::uint64_t> seen;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 20; ++i) {
      auto item = std::make_unique<Item>();
      item->id = map.insert(item.get());
      CHECK(seen.insert(item->id).second);
      live.push_back(std::move(item));
    }
    for (std::size_t i = 0; i < live.size(); i += 2) {
      map.erase(live[i]->id);
      live[i].reset();
    }
    std::erase(live, nullptr);
  }
  CHECK(map.size() == live.size());
  std::size_t visited = 0;
  map.for_each([&](Item& item) {
    ++visited;
    CHECK(map.find(item.id) == &item);
  });
  CHECK(visited == live.size());
}

TEST_CASE("slot map: for_each tolerates erasing while walking") {
  Map map;
  Item items[6];
  for (auto& item : items) item.id = map.insert(&item);
  int visited = 0;
  map.for_each([&](Item& item) {
    ++visited;
    if (&item == &items[0]) {  // erases a later one and itself
      map.erase(items[3].id);
      map.erase(items[0].id);
    }
  });
  CHECK(visited == 5);
  CHECK(map.size() == 4);
}
