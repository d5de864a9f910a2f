// ChildSet: the three representations (inline, array, hash table with tagged pointers) agree
// with a reference map through growth, shrinkage and backward-shift deletion.
#include "core/child_set.hpp"
#include "core/trie_arena.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

using broker::core::ChildSet;
using broker::core::HeapBlocks;
using broker::core::TrieArena;
using broker::core::level_hash;

namespace {

// "k<i>" (built with append: GCC 12 warns falsely on "k" + std::to_string(i)).
std::string key_of(int i) {
  std::string k = "k";
  k += std::to_string(i);
  return k;
}

struct TestNode {
  explicit TestNode(std::string k) : name(std::move(k)) {}
  std::string_view key() const noexcept { return name; }
  std::string name;
};

// Checks every key of `ref` is found (with and without a precomputed hash) and the set holds
// exactly `ref`.
template <typename Set>
void check_same(const Set& set, const std::map<std::string, TestNode*>& ref) {
  REQUIRE(set.size() == ref.size());
  for (const auto& [k, node] : ref) {
    REQUIRE(set.find(k) == node);
    REQUIRE(set.find(k, level_hash(k)) == node);
  }
  std::size_t seen = 0;
  set.for_each([&](TestNode* n) {
    ++seen;
    REQUIRE(ref.at(n->name) == n);
  });
  REQUIRE(seen == ref.size());
}

}  // namespace

TEST_CASE("child set: level_hash is stable and spreads short keys") {
  CHECK(level_hash("abc") == level_hash(std::string("abc")));
  CHECK(level_hash("") != level_hash("a"));
  CHECK(level_hash("a") != level_hash(std::string_view("a\0", 2)));
  CHECK(level_hash("WVW00000000000001") != level_hash("WVW00000000000002"));
  // The top 16 bits (the pointer tag) differ for most neighbouring keys.
  std::map<std::uint64_t, int> tags;
  for (int i = 0; i < 1000; ++i) ++tags[level_hash(std::to_string(i)) >> 48];
  CHECK(tags.size() > 980);
}

TEST_CASE("child set: grows from inline to array to table and shrinks back") {
  std::vector<std::unique_ptr<TestNode>> nodes;
  std::map<std::string, TestNode*> ref;
  ChildSet<TestNode> set;
  CHECK(set.find("x") == nullptr);
  CHECK(set.erase("x") == nullptr);
  for (int i = 0; i < 5000; ++i) {
    nodes.push_back(std::make_unique<TestNode>(key_of(i)));
    set.insert(nodes.back().get());
    ref.emplace(nodes.back()->name, nodes.back().get());
    if (i < 40 || i % 500 == 0) check_same(set, ref);
    REQUIRE(set.find("absent") == nullptr);
  }
  check_same(set, ref);
  for (int i = 0; i < 5000; i += 2) {
    const std::string k = key_of(i);
    REQUIRE(set.erase(k) == ref.at(k));
    ref.erase(k);
    REQUIRE(set.erase(k) == nullptr);
  }
  check_same(set, ref);
  for (int i = 1; i < 5000; i += 2) {
    const std::string k = key_of(i);
    REQUIRE(set.erase(k) == ref.at(k));
    ref.erase(k);
    if (ref.size() < 40 || ref.size() % 500 == 0) check_same(set, ref);
  }
  CHECK(set.empty());
}

TEST_CASE("child set: keys whose hashes collide in the table are all found") {
  // Keys that share their home slot (and some their tag) force probing and backward shifts.
  std::vector<std::unique_ptr<TestNode>> nodes;
  std::map<std::string, TestNode*> ref;
  ChildSet<TestNode> set;
  for (int i = 0; nodes.size() < 200; ++i) {
    std::string k = std::to_string(i);
    if ((level_hash(k) & 63) != 7) continue;  // one home slot of a 64- or 128-... slot table
    nodes.push_back(std::make_unique<TestNode>(k));
    set.insert(nodes.back().get());
    ref.emplace(k, nodes.back().get());
  }
  check_same(set, ref);
  std::mt19937 rng(42);
  std::vector<std::string> keys;
  for (const auto& [k, n] : ref) keys.push_back(k);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (const auto& k : keys) {
    REQUIRE(set.erase(k) != nullptr);
    ref.erase(k);
    check_same(set, ref);
  }
}

TEMPLATE_TEST_CASE("child set: random inserts and erases agree with a map", "", HeapBlocks,
                   TrieArena) {
  std::mt19937 rng(7);
  std::vector<std::unique_ptr<TestNode>> pool;
  std::map<std::string, TestNode*> ref;
  TestType alloc;
  ChildSet<TestNode, TestType> set;
  for (int step = 0; step < 20000; ++step) {
    const std::string k = std::to_string(rng() % 300);
    if (rng() % 2 == 0) {
      if (ref.contains(k)) continue;
      pool.push_back(std::make_unique<TestNode>(k));
      set.insert(pool.back().get(), level_hash(k), alloc);
      ref.emplace(k, pool.back().get());
    } else {
      TestNode* expected = ref.contains(k) ? ref.at(k) : nullptr;
      REQUIRE(set.erase(k, alloc) == expected);
      ref.erase(k);
    }
    if (step % 97 == 0) check_same(set, ref);
  }
  check_same(set, ref);
  set.release(alloc);
}

TEST_CASE("trie arena: blocks of every size class are distinct, aligned and reused") {
  TrieArena arena;
  std::map<char*, std::size_t> live;
  std::mt19937 rng(3);
  const std::size_t sizes[] = {1, 8, 9, 48, 53, 64, 200, 512, 513, 4096, 1u << 20, (1u << 20) + 1};
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 300; ++i) {
      const std::size_t n = sizes[rng() % std::size(sizes)];
      auto* p = static_cast<char*>(arena.allocate(n));
      REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 8 == 0);
      std::memset(p, i & 0xFF, n);  // writable over its whole size (ASan checks the rest)
      // No overlap with a live block.
      auto next = live.lower_bound(p);
      if (next != live.end()) REQUIRE(p + n <= next->first);
      if (next != live.begin()) {
        auto prev = std::prev(next);
        REQUIRE(prev->first + prev->second <= p);
      }
      live.emplace(p, n);
    }
    for (auto it = live.begin(); it != live.end();) {
      if (rng() % 2 == 0) {
        arena.deallocate(it->first, it->second);
        it = live.erase(it);
      } else {
        ++it;
      }
    }
  }
#ifndef BROKER_TRIE_ARENA_CHECKED  // under ASan blocks come from the heap
  // A freed block is handed out again for the same size.
  void* a = arena.allocate(40);
  arena.deallocate(a, 40);
  CHECK(arena.allocate(40) == a);
  arena.deallocate(a, 40);
#endif
  for (const auto& [p, n] : live) arena.deallocate(p, n);
}
