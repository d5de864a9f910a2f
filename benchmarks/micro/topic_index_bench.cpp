// Topic index micro benchmark: memory per subscription, subscribe rate and match latency.
//
//   topic_index_bench [subscriptions=1000000] [matches=2000000]
//
// Builds a fleet-shaped index: one session per 10 subscriptions (the 10M subscriptions / 1M
// sessions target), each session a vehicle subscribing to "fleet/<region>/<VIN>/<name>".
// Memory is the growth of VmRSS (malloc's bytes in use miss the index's own arena) while inserting, with the
// Subscriber objects allocated beforehand: they belong to sessions, not to the index.
// "index_key_bytes_per_sub" is the topic text the index itself stores (these filters have no
// wildcards, so each is stored whole), so rss_bytes_per_sub minus it is the index's overhead
// excluding topic text; "avg_filter_bytes" is the filter text a client sends.
// Single-thread rates and latencies are in thread CPU time; the two-thread figures are wall
// time, except the subscribe-while-matching phase, which gives both: one thread subscribes
// (and then unsubscribes) new filters while another matches without pause.
// Prints one JSON line.
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
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

// Anonymous memory backed by transparent huge pages (the index asks for them).
std::uint64_t anon_huge_bytes() {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("AnonHugePages:", 0) == 0) return std::strtoull(line.c_str() + 14, nullptr, 10) * 1024;
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
// The topics are drawn from a pool of up to a million (more than any cache holds), so the
// figure is the cold-path cost a fleet's traffic sees, not a few thousand hot paths.
// Without Subscribers, as the broker routes QoS 0 or without a store.
double time_matches(const TopicIndex& index, unsigned slot, std::uint64_t sessions,
                    std::uint64_t count, std::uint64_t seed, std::uint64_t& matched,
                    bool with_subscribers = false) {
  Rng rng;
  rng.x ^= seed;
  const std::uint64_t pool = std::min<std::uint64_t>(count, 1u << 20);
  std::string text;  // the pool's topics back to back, read in order
  std::vector<std::uint32_t> ends(pool);
  std::string t;
  for (std::uint64_t i = 0; i < pool; ++i) {
    const std::uint64_t r = rng.next();
    topic_of(t, (r >> 8) % sessions, r % kSubsPerSession);
    text += t;
    ends[i] = static_cast<std::uint32_t>(text.size());
  }
  std::vector<Match> out;
  matched = 0;
  const double t0 = thread_cpu_seconds();
  for (std::uint64_t i = 0, k = 0; i < count; ++i, k = k + 1 == pool ? 0 : k + 1) {
    const std::uint32_t begin = k == 0 ? 0 : ends[k - 1];
    out.clear();
    index.match(slot, std::string_view(text).substr(begin, ends[k] - begin), out, with_subscribers);
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
    subs.push_back(make_subscriber(SubscriberKey{static_cast<std::uint32_t>(s % 2), s}));
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
  // The topic text the index keeps: filters without wildcards are stored whole, once each.
  const std::uint64_t key_bytes = filter_bytes;
  const std::uint64_t rss1 = rss_bytes();
  const std::uint64_t heap1 = heap_bytes();
  const std::uint64_t huge1 = anon_huge_bytes();
  const double dn = static_cast<double>(n);

  std::uint64_t matched_exact = 0;
  const double exact_ns = time_matches(index, 0, sessions, matches, 1, matched_exact);
  std::uint64_t matched_with = 0;
  const double exact_with_subscribers_ns =
      time_matches(index, 0, sessions, matches, 5, matched_with, true);

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

  // Subscribe rate with and without a reader matching beside it: new filters on existing
  // vehicles, added then removed, first alone, then while another thread matches flat out.
  const std::uint64_t churn = std::min<std::uint64_t>(n / 10 + 1, 1000000);
  auto churn_filter = [&](std::string& f, std::uint64_t i) {
    topic_of(f, i % sessions, 0);
    f += "/x";
    f += std::to_string(i / sessions);
  };
  auto run_churn = [&](double& sub_cpu, double& sub_wall, double& unsub_cpu) {
    std::string f;
    const auto w0 = std::chrono::steady_clock::now();
    double t = thread_cpu_seconds();
    for (std::uint64_t i = 0; i < churn; ++i) {
      churn_filter(f, i);
      (void)index.subscribe(subs[i % sessions], f, {});
    }
    sub_cpu = thread_cpu_seconds() - t;
    sub_wall = seconds_since(w0);
    t = thread_cpu_seconds();
    for (std::uint64_t i = 0; i < churn; ++i) {
      churn_filter(f, i);
      (void)index.unsubscribe(subs[i % sessions]->key, f);
    }
    unsub_cpu = thread_cpu_seconds() - t;
  };
  double alone_cpu = 0, alone_wall = 0, alone_unsub = 0;
  run_churn(alone_cpu, alone_wall, alone_unsub);
  std::atomic<bool> stop{false};
  std::uint64_t busy_matches = 0;
  double busy_match_cpu = 0;
  std::thread matcher([&] {
    Rng rng;
    std::vector<std::string> topics(4096);
    for (auto& t : topics) {
      const std::uint64_t r = rng.next();
      topic_of(t, (r >> 8) % sessions, r % kSubsPerSession);
    }
    std::vector<Match> out;
    const double t = thread_cpu_seconds();
    while (!stop.load(std::memory_order_relaxed)) {
      out.clear();
      index.match(1, topics[busy_matches & 4095], out, false);
      ++busy_matches;
    }
    busy_match_cpu = thread_cpu_seconds() - t;
  });
  double busy_cpu = 0, busy_wall = 0, busy_unsub = 0;
  const auto b0 = std::chrono::steady_clock::now();
  run_churn(busy_cpu, busy_wall, busy_unsub);
  stop = true;
  matcher.join();
  const double busy_total_wall = seconds_since(b0);

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
      "\"match_exact_with_subscribers_ns\":%.1f,"
      "\"matches_per_exact_publish\":%.2f,\"wildcard_subs\":%llu,\"match_wildcard_ns\":%.1f,"
      "\"matches_per_wildcard_publish\":%.2f,\"match_2threads_ns\":[%.1f,%.1f],"
      "\"match_2threads_mpublish_per_s\":%.2f,\"heap_left_after_unsubscribe_bytes\":%lld,"
      "\"index_key_bytes_per_sub\":%.1f,\"huge_page_mib\":%.0f,\"rss_bytes_per_sub_excl_keys\":%.1f,"
      "\"churn_subs\":%llu,\"subscribe_alone_per_s\":%.0f,\"subscribe_alone_wall_per_s\":%.0f,"
      "\"subscribe_while_matching_per_s\":%.0f,\"subscribe_while_matching_wall_per_s\":%.0f,"
      "\"match_while_subscribing_ns\":%.1f,\"match_while_subscribing_wall_per_s\":%.0f}\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(sessions),
      static_cast<double>(filter_bytes) / dn, static_cast<double>(rss1 - rss0) / dn,
      static_cast<double>(heap1 - heap0) / dn, dn / subscribe_s, dn / unsubscribe_s, exact_ns, exact_with_subscribers_ns,
      static_cast<double>(matched_exact) / static_cast<double>(matches),
      static_cast<unsigned long long>(wild), wild_ns,
      static_cast<double>(matched_wild) / static_cast<double>(matches), ns0, ns1, two_thread_mps,
      static_cast<long long>(heap2) - static_cast<long long>(heap0),
      static_cast<double>(key_bytes) / dn, static_cast<double>(huge1) / 1048576.0,
      static_cast<double>(rss1 - rss0) / dn - static_cast<double>(key_bytes) / dn,
      static_cast<unsigned long long>(churn), static_cast<double>(churn) / alone_cpu,
      static_cast<double>(churn) / alone_wall, static_cast<double>(churn) / busy_cpu,
      static_cast<double>(churn) / busy_wall,
      busy_match_cpu * 1e9 / static_cast<double>(busy_matches ? busy_matches : 1),
      static_cast<double>(busy_matches) / busy_total_wall);
  return 0;
}
