// Store throughput: QoS-1-like batches (one PutMessage + one PutDelivery, 100-byte payload)
// from 2 submitter threads against LMDB durable (fsync per group), LMDB async (MDB_NOSYNC)
// and memory. Prints one JSON line: batches/s per store and LMDB's average and largest commit
// group, which shows how far group commit amortizes the fsync.
//
// Each submitter keeps at most `window` batches in flight (like a publisher's Receive Maximum),
// so group sizes reflect what a broker sees rather than an unbounded backlog; window 0 submits
// open loop.
//
// Usage: store_bench [batches per run, default 20000] [window, default 64]
//                    [directory, default the system temp dir]
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "broker/store.hpp"
#include "storage/lmdb/lmdb_store.hpp"

namespace {

using namespace broker;

constexpr int kThreads = 2;
constexpr std::size_t kPayloadBytes = 100;

struct RunResult {
  std::string name;
  double batches_per_s = 0;
  double avg_group = 0;
  std::uint64_t max_group = 0;
  std::uint64_t failed = 0;
};

RunResult run(const std::string& name, Store& store, std::uint64_t batches, std::ptrdiff_t window) {
  std::atomic<std::uint64_t> failed{0};
  const std::string payload(kPayloadBytes, 'p');
  auto start = std::chrono::steady_clock::now();
  // One in-flight window per submitter; they outlive every completion (flush() below).
  std::vector<std::unique_ptr<std::counting_semaphore<>>> windows;
  for (int t = 0; t < kThreads; ++t) {
    windows.push_back(std::make_unique<std::counting_semaphore<>>(window > 0 ? window : 1));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& slots = *windows[static_cast<std::size_t>(t)];
      for (std::uint64_t i = static_cast<std::uint64_t>(t); i < batches; i += kThreads) {
        WriteBatch b;
        StoredMessage m;
        m.id = i + 1;
        m.message.topic = "vehicles/" + std::to_string(i % 1000) + "/telemetry";
        m.message.payload = payload;
        m.message.qos = 1;
        b.put_message(std::move(m));
        StoredDelivery d;
        d.client_id = "consumer-" + std::to_string(t);
        d.message_id = i + 1;
        d.qos = 1;
        b.put_delivery(std::move(d));
        if (window > 0) slots.acquire();
        store.submit(std::move(b), [&failed, &slots, window](const Status& st) {
          if (!st) failed.fetch_add(1, std::memory_order_relaxed);
          if (window > 0) slots.release();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  store.flush();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  RunResult r;
  r.name = name;
  r.batches_per_s = static_cast<double>(batches) / secs;
  r.failed = failed.load();
  r.avg_group = 1;
  r.max_group = 1;
  if (auto stats = storage::lmdb_store_stats(store)) {
    r.avg_group = stats->groups ? static_cast<double>(stats->batches) / static_cast<double>(stats->groups) : 0;
    r.max_group = stats->max_group_size;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t batches = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  std::ptrdiff_t window = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 64;
  std::filesystem::path base = argc > 3 ? std::filesystem::path(argv[3])
                                        : std::filesystem::temp_directory_path();
  std::string tmpl = (base / "store-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "store_bench: cannot create a directory under %s\n", base.c_str());
    return 1;
  }
  std::vector<RunResult> results;
  for (bool sync : {true, false}) {
    LmdbStoreOptions o;
    o.dir = tmpl + (sync ? "/sync" : "/async");
    o.sync = sync;
    o.map_size = 4ull << 30;
    auto store = open_lmdb_store(o);
    if (!store) {
      std::fprintf(stderr, "store_bench: %s\n", store.status().to_string().c_str());
      return 1;
    }
    results.push_back(run(sync ? "lmdb_sync" : "lmdb_async", *store.value(), batches, window));
  }
  StorePtr memory = make_memory_store();
  results.push_back(run("memory", *memory, batches, window));
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);

  std::string out = fmt::format(R"({{"bench":"store","batches":{},"threads":{},"window":{},"payload_bytes":{},"results":[)",
                                batches, kThreads, window, kPayloadBytes);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    out += fmt::format(R"({}{{"store":"{}","batches_per_s":{:.0f},"avg_group":{:.1f},"max_group":{},"failed":{}}})",
                       i ? "," : "", r.name, r.batches_per_s, r.avg_group, r.max_group, r.failed);
  }
  out += "]}";
  std::puts(out.c_str());
  return 0;
}
