// Fan-out micro benchmark: one message to N connected sessions, in process, no sockets.
//
//   fanout_bench [sessions=1000000] [payload_bytes=64] [workers=2] [mqtt_version=5]
//
// N virtual clients connect (each on its session's home worker) and subscribe to
// "fleet/broadcast/#" at QoS 1. A publisher on worker 0 then sends one QoS 0 and one QoS 1
// PUBLISH to "fleet/broadcast/ota"; each is timed from the publisher's bytes to the last
// subscriber's PUBLISH written to its link: match, route (local and cross-worker batches), and
// per-receiver header encoding. The virtual link counts the bytes and keeps nothing, as if the
// kernel took them at once, so the memory figures are the core's. Everything runs on this
// thread (the batches for other workers run from a queue), so its CPU time is the total.
// Also counts heap allocations per delivery (a global operator new counter).
// Prints one JSON line.
#include <malloc.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "broker/options.hpp"
#include "core/clock.hpp"
#include "core/dispatcher.hpp"
#include "core/engine.hpp"
#include "core/queue_dispatcher.hpp"
#include "core/link.hpp"
#include "core/worker_core.hpp"
#include "protocol/encoder.hpp"
#include "protocol/packet.hpp"

namespace {

std::atomic<std::uint64_t> g_allocations{0};

}  // namespace

// Counts every allocation made through operator new (std containers, shared_ptr, strings).
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace core = broker::core;
namespace protocol = broker::protocol;

class FixedClock final : public core::Clock {
 public:
  std::uint64_t now_ms() const noexcept override { return 1'700'000'000'000ull; }
};

// A connection whose writes are counted and dropped.
class CountingLink final : public core::Link {
 public:
  void pause_reading() override {}
  void resume_reading() override {}
  void write(std::string_view head, const protocol::PayloadPtr& payload) override {
    ++writes;
    bytes += head.size() + (payload ? payload->size() : 0);
  }
  void close() override { closed = true; }
  bool hand_over(unsigned, std::string&&) override { std::abort(); }  // opened on the home worker
  std::size_t pending_bytes() const override { return 0; }
  const std::string& peer() const override { return peer_; }

  std::unique_ptr<core::ConnectionHandler> handler;
  std::uint64_t writes = 0;
  std::uint64_t bytes = 0;
  bool closed = false;

 private:
  static inline const std::string peer_ = "virtual";
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::uint64_t status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = field;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10);
  }
  return 0;
}

// malloc's bytes in use, large (mmapped) blocks included.
std::uint64_t heap_bytes() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

std::string bytes_of(const protocol::Packet& packet, protocol::ProtocolVersion v) {
  std::string out;
  if (!protocol::encode(packet, v, out)) std::abort();
  return out;
}

struct RunResult {
  double wall_s = 0;
  double cpu_s = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t allocations = 0;
  std::int64_t heap_growth = 0;  // bytes in use after routing, before the batches ran
};

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const std::size_t payload_bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64;
  const unsigned workers = argc > 3 ? static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)) : 2;
  const auto version = argc > 4 && std::string(argv[4]) == "4" ? protocol::ProtocolVersion::V311
                                                                : protocol::ProtocolVersion::V5;
  if (n == 0 || workers == 0) return 2;

  broker::Options options;
  options.limits.max_worker_inbox = static_cast<std::uint32_t>(n + 1);  // one broadcast must fit (it does anyway when empty)
  FixedClock clock;
  core::QueueDispatcher dispatcher(workers);
  core::Engine engine(options, workers, dispatcher, clock);
  auto settle = [&] {
    do {
      for (unsigned w = 0; w < workers; ++w) engine.worker(w).end_of_turn();
    } while (dispatcher.run() != 0);
  };

  const std::uint64_t rss_start_kib = status_kib("VmRSS:");
  std::vector<std::unique_ptr<CountingLink>> links;
  links.reserve(n + 1);
  auto open = [&](const std::string& client_id) -> CountingLink& {
    links.push_back(std::make_unique<CountingLink>());
    CountingLink& link = *links.back();
    const unsigned home = engine.home_worker(client_id);
    link.handler = engine.worker(home).open(link);
    protocol::Connect c;
    c.version = version;
    c.client_id = client_id;
    c.keep_alive = 60;
    const std::string bytes = bytes_of(c, version);
    link.handler->on_bytes(bytes.data(), bytes.size());
    return link;
  };

  protocol::Subscribe sub;
  sub.packet_id = 1;
  sub.entries.push_back(protocol::SubscribeEntry{"fleet/broadcast/#", 1, false, false, 0});
  const std::string sub_bytes = bytes_of(sub, version);
  const double setup0 = thread_cpu_seconds();
  std::string id;
  for (std::uint64_t i = 0; i < n; ++i) {
    id = "veh-" + std::to_string(i);
    CountingLink& link = open(id);
    link.handler->on_bytes(sub_bytes.data(), sub_bytes.size());
    if (i % 4096 == 0) settle();
  }
  settle();
  const double setup_cpu = thread_cpu_seconds() - setup0;
  CountingLink& publisher = open("publisher-0");
  settle();
  if (engine.index().subscription_count() != n) {
    std::fprintf(stderr, "expected %llu subscriptions, have %llu\n",
                 static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(engine.index().subscription_count()));
    return 1;
  }
  const std::uint64_t rss_setup_kib = status_kib("VmRSS:");

  auto count_writes = [&] {
    std::uint64_t w = 0, b = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      w += links[i]->writes;
      b += links[i]->bytes;
    }
    return std::pair{w, b};
  };

  auto run = [&](std::uint8_t qos, std::uint16_t packet_id) {
    protocol::Publish p;
    p.topic = "fleet/broadcast/ota";
    p.payload = protocol::Payload::copy_of(std::string(payload_bytes, 'x'));
    p.qos = qos;
    p.packet_id = packet_id;
    const std::string bytes = bytes_of(p, version);
    const auto [w0, b0] = count_writes();
    malloc_trim(0);
    const std::uint64_t heap0 = heap_bytes();
    RunResult r;
    const std::uint64_t a0 = g_allocations.load();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    publisher.handler->on_bytes(bytes.data(), bytes.size());
    r.heap_growth = static_cast<std::int64_t>(heap_bytes()) - static_cast<std::int64_t>(heap0);
    settle();
    r.cpu_s = thread_cpu_seconds() - c0;
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.allocations = g_allocations.load() - a0;
    const auto [w1, b1] = count_writes();
    r.deliveries = w1 - w0;
    r.bytes = b1 - b0;
    return r;
  };

  const RunResult q0 = run(0, 0);
  const RunResult q1 = run(1, 7);
  const std::uint64_t hwm_kib = status_kib("VmHWM:");
  if (q0.deliveries != n || q1.deliveries != n) {
    std::fprintf(stderr, "deliveries: qos0 %llu, qos1 %llu, expected %llu\n",
                 static_cast<unsigned long long>(q0.deliveries),
                 static_cast<unsigned long long>(q1.deliveries), static_cast<unsigned long long>(n));
    return 1;
  }

  const double dn = static_cast<double>(n);
  auto json = [&](const char* name, const RunResult& r) {
    std::printf(
        "\"%s\":{\"seconds\":%.3f,\"cpu_s\":%.3f,\"cpu_s_per_million_deliveries\":%.3f,"
        "\"deliveries\":%llu,\"wire_bytes_per_delivery\":%.1f,\"allocations_per_delivery\":%.2f,"
        "\"heap_bytes_per_delivery_after_route\":%.1f}",
        name, r.wall_s, r.cpu_s, r.cpu_s * 1e6 / dn, static_cast<unsigned long long>(r.deliveries),
        static_cast<double>(r.bytes) / dn, static_cast<double>(r.allocations) / dn,
        static_cast<double>(r.heap_growth) / dn);
  };
  std::printf("{\"bench\":\"fanout\",\"sessions\":%llu,\"workers\":%u,\"mqtt\":\"%s\","
              "\"payload_bytes\":%zu,\"setup_cpu_s\":%.2f,\"rss_per_session_bytes\":%.0f,",
              static_cast<unsigned long long>(n), workers,
              version == protocol::ProtocolVersion::V5 ? "5.0" : "3.1.1", payload_bytes, setup_cpu,
              static_cast<double>(rss_setup_kib - rss_start_kib) * 1024.0 / dn);
  json("qos0", q0);
  std::printf(",");
  json("qos1", q1);
  std::printf(",\"peak_rss_mib\":%.1f}\n", static_cast<double>(hwm_kib) / 1024.0);
  return 0;
}
