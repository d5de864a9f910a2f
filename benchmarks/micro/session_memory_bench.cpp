// Memory per idle session, in process, with no socket: N virtual vehicles each CONNECT with a
// persistent session (the fleet case: commands sent while a vehicle is offline wait for it)
// and SUBSCRIBE to their own command topic fleet/<region>/<VIN>/cmd. Then every connection
// drops and the sessions stay, offline.
//
// Measured around each phase: VmRSS (what the OS charges) and mallinfo2().uordblks (bytes the
// allocator handed out, which excludes free lists and arena slack); both divided by N. The
// virtual links live in one array reserved before the baseline, so they are not counted; what
// is counted is everything the core allocates: connection handler, session, subscriber, the
// worker's tables and the topic index entries.
//
// Usage: session_memory_bench [sessions, default 1000000] [protocol 4|5, default 4]
// Prints one JSON line. Small N (10000) is enough for a smoke run.
#include <malloc.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "broker/options.hpp"
#include "core/client_connection.hpp"
#include "core/dispatcher.hpp"
#include "core/engine.hpp"
#include "core/queue_dispatcher.hpp"
#include "core/link.hpp"
#include "core/session.hpp"
#include "core/worker_core.hpp"
#include "protocol/encoder.hpp"

namespace {

using namespace broker;

constexpr unsigned kWorkers = 2;

// The smallest Link: whatever the broker writes is dropped.
class NullLink final : public core::Link {
 public:
  void write(std::string_view, const protocol::PayloadPtr&) override {}
  void pause_reading() override {}
  void resume_reading() override {}
  void close() override {}
  bool hand_over(unsigned, std::string&&) override { std::abort(); }  // never: home worker
  std::size_t pending_bytes() const override { return 0; }
  const std::string& peer() const override { return peer_; }
  std::unique_ptr<core::ConnectionHandler> handler;

 private:
  static inline const std::string peer_ = "virtual";
};

std::int64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::int64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

std::int64_t heap_bytes() { return static_cast<std::int64_t>(mallinfo2().uordblks); }

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string encoded(const protocol::Packet& packet, protocol::ProtocolVersion version) {
  std::string bytes;
  if (!protocol::encode(packet, version, bytes)) std::abort();
  return bytes;
}

// A 17-character VIN-like id, unique per vehicle.
std::string vin(std::size_t i) { return fmt::format("WVWZZZ{:011d}", i); }

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const int level = argc > 2 ? std::atoi(argv[2]) : 4;
  const auto version = level == 5 ? protocol::ProtocolVersion::V5 : protocol::ProtocolVersion::V311;
  static const char* const kRegions[] = {"eu-west", "eu-north", "us-east", "us-west",
                                         "ap-south", "ap-east", "sa-east", "me-central"};

  Options options;
  core::QueueDispatcher dispatcher(kWorkers);
  core::Engine engine(options, kWorkers, dispatcher);
  std::vector<NullLink> links(n);
  const auto settle = [&] {
    for (unsigned w = 0; w < kWorkers; ++w) engine.worker(w).end_of_turn();
    dispatcher.run();
  };
  settle();
  malloc_trim(0);
  const std::int64_t rss0 = rss_bytes();
  const std::int64_t heap0 = heap_bytes();

  const double cpu0 = thread_cpu_s();
  for (std::size_t i = 0; i < n; ++i) {
    protocol::Connect connect;
    connect.version = version;
    connect.client_id = vin(i);
    connect.clean_start = false;
    connect.keep_alive = 60;
    if (version == protocol::ProtocolVersion::V5) connect.properties.session_expiry_interval = 86400;
    protocol::Subscribe subscribe;
    subscribe.packet_id = 1;
    subscribe.entries.push_back(protocol::SubscribeEntry{
        fmt::format("fleet/{}/{}/cmd", kRegions[i % 8], connect.client_id), 1, false, false, 0});
    const std::string bytes = encoded(connect, version) + encoded(subscribe, version);
    NullLink& link = links[i];
    link.handler = engine.worker(engine.home_worker(connect.client_id)).open(link);
    link.handler->on_bytes(bytes.data(), bytes.size());
    if (i % 1024 == 1023) settle();
  }
  settle();
  const double cpu_connect = thread_cpu_s() - cpu0;
  const std::int64_t rss1 = rss_bytes();
  const std::int64_t heap1 = heap_bytes();

  std::size_t sessions = 0;
  for (unsigned w = 0; w < kWorkers; ++w) sessions += engine.worker(w).session_count();
  if (sessions != n || engine.index().subscription_count() != n) {
    std::fprintf(stderr, "expected %zu sessions and subscriptions, have %zu and %llu\n", n, sessions,
                 static_cast<unsigned long long>(engine.index().subscription_count()));
    return 1;
  }

  // Every vehicle goes offline; the sessions (and their subscriptions) stay.
  for (auto& link : links) {
    link.handler->on_closed();
    link.handler.reset();
  }
  settle();
  const std::int64_t rss2 = rss_bytes();
  const std::int64_t heap2 = heap_bytes();

  const auto per = [n](std::int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(n); };
  std::printf(
      "{\"sessions\":%zu,\"protocol\":%d,\"clean_start\":false,\"rss_per_session_bytes\":%.0f,"
      "\"heap_per_session_bytes\":%.0f,\"offline_rss_per_session_bytes\":%.0f,"
      "\"offline_heap_per_session_bytes\":%.0f,\"connect_subscribe_per_cpu_s\":%.0f,"
      "\"sizeof\":{\"ClientConnection\":%zu,\"Session\":%zu,\"Subscriber\":%zu}}\n",
      n, level, per(rss1 - rss0), per(heap1 - heap0), per(rss2 - rss0), per(heap2 - heap0),
      cpu_connect > 0 ? static_cast<double>(n) / cpu_connect : 0.0, sizeof(core::ClientConnection),
      sizeof(core::Session), sizeof(core::Subscriber));
  return 0;
}
