// Topic index micro benchmark: memory per subscription, subscribe rate and match latency.
//
//   topic_index_bench [subscriptions=1000000] [matches=2000000]
//
// Builds a fleet-shaped index: one session per 10 subscriptions (the 10M subscriptions / 1M
// sessions target), each session a vehicle subscribing to "fleet/<region>/<VIN>/<name>".
// Memory is the growth of VmRSS (and of malloc's bytes in use) while inserting, with the
// Subscriber objects allocated beforehand: they belong to sessions, not to the index.
// Single-thread rates and latencies are in thread CPU time; the two-thread figure is wall time.
// Prints one JSON line.
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/topic_index.hpp"

namespace {

using broker::core::Match;
using broker::core::Subscriber;
using broker::core::SubscriberKey;
using broker::core::SubscriberPtr;
using broker::core::TopicIndex;

constexpr std::uint64_t kSubsPerSession = 10;
constexpr unsigned kRegions = 16;
const char* const kNames[kSubsPerSession] = {"cmd",   "config", "ota/req", "diag",   "ack",
                                             "state", "alerts", "geo",     "policy", "time"};

std::uint64_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

std::uint64_t heap_bytes() { return mallinfo2().uordblks; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This thread's CPU seconds: single-thread phases are timed with it so that a busy machine
// (other builds sharing the cores) skews the numbers less than wall time would.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A 17-character vehicle identifier derived from the session number.
void append_vin(std::string& s, std::uint64_t session) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "WVW%014llu", static_cast<unsigned long long>(session));
  s += buf;
}

void topic_of(std::string& s, std::uint64_t session, std::uint64_t k) {
  s.assign("fleet/");
  s += std::to_string(session % kRegions);
  s += '/';
  append_vin(s, session);
  s += '/';
  s += kNames[k];
}

struct Rng {
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  std::uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

// Average ns per match over `count` publishes to existing exact topics; also matches seen.
double time_matches(const TopicIndex& index, unsigned slot, std::uint64_t sessions,
                    std::uint64_t count, std::uint64_t seed, std::uint64_t& matched) {
  Rng rng;
  rng.x ^= seed;
  std::vector<std::string> topics(4096);
  for (auto& t : topics) {
    const std::uint64_t r = rng.next();
    topic_of(t, (r >> 8) % sessions, r % kSubsPerSession);
  }
  std::vector<Match> out;
  matched = 0;
  const double t0 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < count; ++i) {
    out.clear();
    index.match(slot, topics[i & 4095], out);
    matched += out.size();
  }
  return (thread_cpu_seconds() - t0) * 1e9 / static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const std::uint64_t matches = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2000000;
  const std::uint64_t sessions = (n + kSubsPerSession - 1) / kSubsPerSession;
  if (n == 0) return 2;

  std::vector<SubscriberPtr> subs;
  subs.reserve(sessions);
  for (std::uint64_t s = 0; s < sessions; ++s) {
    subs.push_back(std::make_shared<Subscriber>(SubscriberKey{static_cast<std::uint32_t>(s % 2), s}));
    subs.back()->connected = true;
  }

  TopicIndex index(2);
  std::string filter;
  std::uint64_t filter_bytes = 0;
  malloc_trim(0);
  const std::uint64_t rss0 = rss_bytes();
  const std::uint64_t heap0 = heap_bytes();
  double c0 = thread_cpu_seconds();
  std::uint64_t added = 0;
  for (std::uint64_t k = 0; k < kSubsPerSession && added < n; ++k) {
    for (std::uint64_t s = 0; s < sessions && added < n; ++s, ++added) {
      topic_of(filter, s, k);
      filter_bytes += filter.size();
      (void)index.subscribe(subs[s], filter, {});
    }
  }
  const double subscribe_s = thread_cpu_seconds() - c0;
  const std::uint64_t rss1 = rss_bytes();
  const std::uint64_t heap1 = heap_bytes();
  const double dn = static_cast<double>(n);

  std::uint64_t matched_exact = 0;
  const double exact_ns = time_matches(index, 0, sessions, matches, 1, matched_exact);

  // Wildcards on top: per-region status, a fleet-wide shared telemetry group, a monitor on
  // '#', a few vehicles' own "#" and a fleet-wide command broadcast level.
  std::uint64_t wild = 0;
  for (unsigned r = 0; r < kRegions; ++r) {
    (void)index.subscribe(subs[r % sessions], "fleet/" + std::to_string(r) + "/+/state", {});
    ++wild;
  }
  for (std::uint64_t m = 0; m < 8 && m < sessions; ++m) {
    (void)index.subscribe(subs[m], "$share/analytics/fleet/+/+/diag", {});
    ++wild;
  }
  (void)index.subscribe(subs[0], "#", {});
  ++wild;
  for (std::uint64_t s = 0; s < sessions; s += 100) {
    std::string f = "fleet/" + std::to_string(s % kRegions) + "/";
    append_vin(f, s);
    (void)index.subscribe(subs[s], f + "/#", {});
    ++wild;
  }
  (void)index.subscribe(subs[0], "fleet/+/+/cmd", {});
  ++wild;
  std::uint64_t matched_wild = 0;
  const double wild_ns = time_matches(index, 0, sessions, matches, 2, matched_wild);

  // Both reader slots at once: the big-reader lock should scale with cores.
  std::uint64_t m0 = 0;
  std::uint64_t m1 = 0;
  double ns0 = 0;
  double ns1 = 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread th([&] { ns1 = time_matches(index, 1, sessions, matches, 3, m1); });
  ns0 = time_matches(index, 0, sessions, matches, 4, m0);
  th.join();
  const double two_thread_mps = 2.0 * static_cast<double>(matches) / seconds_since(t0) / 1e6;

  // Unsubscribe everything (exercises pruning); memory should return.
  c0 = thread_cpu_seconds();
  added = 0;
  for (std::uint64_t k = 0; k < kSubsPerSession && added < n; ++k) {
    for (std::uint64_t s = 0; s < sessions && added < n; ++s, ++added) {
      topic_of(filter, s, k);
      (void)index.unsubscribe(subs[s]->key, filter);
    }
  }
  const double unsubscribe_s = thread_cpu_seconds() - c0;
  const std::uint64_t heap2 = heap_bytes();

  std::printf(
      "{\"bench\":\"topic_index\",\"subscriptions\":%llu,\"sessions\":%llu,"
      "\"avg_filter_bytes\":%.1f,\"rss_bytes_per_sub\":%.1f,\"heap_bytes_per_sub\":%.1f,"
      "\"subscribe_per_s\":%.0f,\"unsubscribe_per_s\":%.0f,\"match_exact_ns\":%.1f,"
      "\"matches_per_exact_publish\":%.2f,\"wildcard_subs\":%llu,\"match_wildcard_ns\":%.1f,"
      "\"matches_per_wildcard_publish\":%.2f,\"match_2threads_ns\":[%.1f,%.1f],"
      "\"match_2threads_mpublish_per_s\":%.2f,\"heap_left_after_unsubscribe_bytes\":%lld}\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(sessions),
      static_cast<double>(filter_bytes) / dn, static_cast<double>(rss1 - rss0) / dn,
      static_cast<double>(heap1 - heap0) / dn, dn / subscribe_s, dn / unsubscribe_s, exact_ns,
      static_cast<double>(matched_exact) / static_cast<double>(matches),
      static_cast<unsigned long long>(wild), wild_ns,
      static_cast<double>(matched_wild) / static_cast<double>(matches), ns0, ns1, two_thread_mps,
      static_cast<long long>(heap2) - static_cast<long long>(heap0));
  return 0;
}
