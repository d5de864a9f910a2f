// InflightWindow: send order, lookups by packet id, erasure in any order, compaction.
#include <catch2/catch.hpp>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/inflight_window.hpp"

using broker::core::InflightWindow;

namespace {

// A move-only message that tells when it is let go.
struct Probe {
  std::shared_ptr<int> alive;
  int value = 0;
};

using Window = InflightWindow<Probe>;

Probe probe(int v) { return Probe{std::make_shared<int>(v), v}; }

std::vector<std::uint16_t> ids(Window& w) {
  std::vector<std::uint16_t> out;
  for (auto& [id, p] : w) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("inflight window: empty costs a pointer and iterates nothing", "[core][inflight]") {
  Window w;
  STATIC_REQUIRE(sizeof(Window) == sizeof(void*));
  CHECK(w.empty());
  CHECK(w.size() == 0);
  CHECK(w.begin() == w.end());
  CHECK(w.find(1) == w.end());
  CHECK_FALSE(w.contains(0));
}

TEST_CASE("inflight window: iterates in send order, also across the packet id wrap",
          "[core][inflight]") {
  Window w;
  for (std::uint16_t id : std::initializer_list<std::uint16_t>{65533, 65534, 65535, 1, 2}) CHECK(w.emplace(id, probe(id))->first == id);
  CHECK(ids(w) == std::vector<std::uint16_t>{65533, 65534, 65535, 1, 2});
  CHECK(w.size() == 5);
  CHECK(w.contains(65535));
  CHECK_FALSE(w.contains(3));
}

TEST_CASE("inflight window: in-order acknowledgements", "[core][inflight]") {
  Window w;
  for (std::uint16_t id = 1; id <= 100; ++id) w.emplace(id, probe(id));
  for (std::uint16_t id = 1; id <= 99; ++id) {
    auto it = w.find(id);
    REQUIRE(it != w.end());
    CHECK(it->second.value == id);
    auto next = w.erase(it);
    REQUIRE(next != w.end());
    CHECK(next->first == id + 1);
    CHECK(w.size() == 100u - id);
    CHECK_FALSE(w.contains(id));
    CHECK(w.contains(static_cast<std::uint16_t>(id + 1)));
  }
  CHECK(ids(w) == std::vector<std::uint16_t>{100});
  auto after = w.erase(w.begin());
  CHECK(after == w.end());
  CHECK(w.empty());
}

TEST_CASE("inflight window: acknowledgements out of order, new sends in between",
          "[core][inflight]") {
  Window w;
  std::vector<std::uint16_t> expect;
  std::uint16_t next_id = 1;
  auto send = [&] {
    w.emplace(next_id, probe(next_id));
    expect.push_back(next_id);
    ++next_id;
  };
  auto ack = [&](std::uint16_t id) {
    auto it = w.find(id);
    REQUIRE(it != w.end());
    w.erase(it);
    std::erase(expect, id);
  };
  for (int i = 0; i < 8; ++i) send();
  ack(5);
  ack(2);
  ack(1);  // the head moves past 1 and 2
  send();
  ack(8);
  ack(3);
  ack(4);  // compacts
  send();
  send();
  CHECK(ids(w) == expect);
  CHECK(w.size() == expect.size());
  for (std::uint16_t id : expect) CHECK(w.find(id)->second.value == id);
  for (std::uint16_t id : std::initializer_list<std::uint16_t>{1, 2, 3, 4, 5, 8}) CHECK_FALSE(w.contains(id));
}

TEST_CASE("inflight window: erase while iterating visits every message once", "[core][inflight]") {
  Window w;
  for (std::uint16_t id = 1; id <= 40; ++id) w.emplace(id, probe(id));
  w.erase(w.find(3));
  std::vector<std::uint16_t> seen;
  for (auto it = w.begin(); it != w.end();) {
    seen.push_back(it->first);
    it = it->first % 2 == 0 ? w.erase(it) : std::next(it);  // drop the even ones
  }
  std::vector<std::uint16_t> all;
  for (std::uint16_t id = 1; id <= 40; ++id)
    if (id != 3) all.push_back(id);
  CHECK(seen == all);
  std::vector<std::uint16_t> odd;
  for (std::uint16_t id = 1; id <= 40; id += 2)
    if (id != 3) odd.push_back(id);
  CHECK(ids(w) == odd);
}

TEST_CASE("inflight window: an oldest message never acknowledged, many after it",
          "[core][inflight]") {
  Window w;
  w.emplace(1, probe(1));  // never acknowledged
  for (int round = 0; round < 1000; ++round) {
    const auto a = static_cast<std::uint16_t>(2 + 2 * (round % 1000));
    const auto b = static_cast<std::uint16_t>(a + 1);
    w.emplace(a, probe(a));
    w.emplace(b, probe(b));
    REQUIRE(w.erase(w.find(a))->first == b);  // compacts now and then: the next is still b
    const auto after = w.erase(w.find(b));
    REQUIRE(after == w.end());
    REQUIRE(ids(w) == std::vector<std::uint16_t>{1});
  }
  CHECK(w.size() == 1);
  CHECK(w.find(1)->second.value == 1);
}

TEST_CASE("inflight window: an acknowledged message is let go at once", "[core][inflight]") {
  Window w;
  auto p = probe(7);
  std::weak_ptr<int> watch = p.alive;
  w.emplace(1, std::move(p));
  w.emplace(2, probe(8));
  w.erase(w.find(1));
  CHECK(watch.expired());
  w.clear();
  CHECK(w.empty());
}
