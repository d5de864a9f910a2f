// The LMDB store beyond the shared contract: durability across reopen and SIGKILL, foreign and
// damaged directories, a full map, and group commit.
#include "storage/lmdb/lmdb_store.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <lmdb.h>

#include "storage/lmdb/lmdb_env.hpp"
#include "storage/record_codec.hpp"
#include "unit/storage/golden_samples.hpp"
#include "unit/storage/store_test_util.hpp"
#include "util/log.hpp"

namespace {

using namespace broker;
using broker::test::Collector;
using broker::test::load_all;
using broker::test::make_delivery;
using broker::test::make_message;
using broker::test::make_session;
using broker::test::submit_and_wait;
using broker::test::TempDir;
namespace fs = std::filesystem;

Result<StorePtr> open_at(const std::string& dir, std::uint64_t map_size = 64ull << 20,
                         bool sync = false, bool move_aside = false) {
  LmdbStoreOptions o;
  o.dir = dir;
  o.map_size = map_size;
  o.sync = sync;
  o.move_aside_unreadable = move_aside;
  return open_lmdb_store(o);
}

StorePtr must_open(const std::string& dir, std::uint64_t map_size = 64ull << 20, bool sync = false) {
  auto r = open_at(dir, map_size, sync);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

// Collects warnings instead of printing them; restores stderr on exit.
class LogCapture {
 public:
  LogCapture() {
    log::set_sink([this](LogLevel, std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { log::set_sink(nullptr); }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Runs `edit` in a raw write transaction on the environment in `dir` (our store closed).
template <typename Edit>
void raw_edit(const std::string& dir, Edit edit) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 16);
  fs::create_directories(dir);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  edit(txn);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

void raw_put(MDB_txn* txn, const char* db, std::string_view key, std::string_view value) {
  MDB_dbi dbi = 0;
  REQUIRE(mdb_dbi_open(txn, db, MDB_CREATE, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
}

void raw_del(MDB_txn* txn, const char* db, std::string_view key) {
  MDB_dbi dbi = 0;
  REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  REQUIRE(mdb_del(txn, dbi, &k, nullptr) == 0);
}

// Records in database `db` of the (closed) store in `dir`.
std::size_t raw_count(const std::string& dir, const char* db) {
  std::size_t n = 0;
  raw_edit(dir, [&](MDB_txn* txn) {
    MDB_dbi dbi = 0;
    REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
    MDB_stat st{};
    REQUIRE(mdb_stat(txn, dbi, &st) == 0);
    n = st.ms_entries;
  });
  return n;
}

// What loading the store in `dir` returns.
Status load_status(const std::string& dir) {
  StorePtr store = must_open(dir);
  Status st;
  load_all(*store, &st);
  return st;
}

std::string random_bytes(std::size_t n, std::mt19937_64& rng) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

void fill_some(Store& store, int messages) {
  WriteBatch b;
  for (int i = 1; i <= messages; ++i) {
    b.put_message(make_message(static_cast<std::uint64_t>(i), "t", std::string(200, 'x')));
  }
  REQUIRE(submit_and_wait(store, std::move(b)));
}

}  // namespace

TEST_CASE("lmdb store: reopen after close keeps everything", "[storage][lmdb]") {
  TempDir dir;
  StoredSession session = make_session("car-1");
  session.will = StoredWill{make_message(0, "will/t", "bye").message, 10, 0};
  {
    StorePtr store = must_open(dir.path(), 64ull << 20, /*sync=*/true);
    WriteBatch b;
    b.put_message(make_message(10, "a", "one", 5));
    b.put_session(session);
    b.put_delivery(make_delivery("car-1", 10));
    b.put_retained(make_message(11, "r/x", "kept"));
    b.append_log(make_message(12, "log", "data", 77));
    b.mark_alive(1'700'000'000'123ull);
    REQUIRE(submit_and_wait(*store, std::move(b)));
    REQUIRE(store->commit_consumer_offset("c", 2));
  }
  StorePtr store = must_open(dir.path());
  Status st;
  Collector c = load_all(*store, &st);
  REQUIRE(st);
  CHECK(c.order == "amsdr");
  CHECK(c.alive == 1'700'000'000'123ull);
  CHECK(test::equal(c.sessions[0], session));
  CHECK(c.messages[0].message.payload == "one");
  CHECK(c.retained[0].message.topic == "r/x");
  auto log = store->read_log(1, 10);
  REQUIRE(log.value().size() == 1);
  CHECK(log.value()[0].message.message.payload == "data");
  CHECK(store->consumer_offset("c").value() == 2);
}

TEST_CASE("lmdb store: a directory of format version 1 keeps its records and is marked current",
          "[storage][lmdb]") {
  namespace g = broker::test::golden;
  TempDir dir;
  std::string path = dir.path();
  { must_open(path); }
  auto v1 = g::read_golden(1);
  const StoredDelivery old = g::delivery();
  raw_edit(path, [&](MDB_txn* txn) {
    raw_put(txn, "meta", "meta", v1["meta"]);
    raw_put(txn, "deliveries", storage::delivery_key(old.client_id, old.message_id), v1["delivery"]);
  });
  {
    StorePtr store = must_open(path);
    Status st;
    Collector c = load_all(*store, &st);
    REQUIRE(st);
    REQUIRE(c.deliveries.size() == 1);
    CHECK(test::equal(c.deliveries[0], old));
    // A copy of the same message for another of the session's groups joins it.
    WriteBatch b;
    b.put_delivery(g::tagged_delivery());
    REQUIRE(submit_and_wait(*store, std::move(b)));
    c = load_all(*store, &st);
    REQUIRE(c.deliveries.size() == 2);
    CHECK(test::equal(c.deliveries[1], g::tagged_delivery()));
  }
  // An older broker must now refuse the directory rather than meet records it cannot read.
  raw_edit(path, [](MDB_txn* txn) {
    MDB_dbi dbi = 0;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
    MDB_val k{4, const_cast<char*>("meta")}, v{};
    REQUIRE(mdb_get(txn, dbi, &k, &v) == 0);
    auto meta = storage::decode_meta(std::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
    REQUIRE(meta);
    CHECK(meta.value().format_version == storage::kFormatVersion);
  });
}

TEST_CASE("lmdb store: one process at a time on a directory, none after it died", "[storage][lmdb]") {
  TempDir dir;
  {
    StorePtr first = must_open(dir.path());
    auto second = open_at(dir.path());
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().code() == Status::Code::Unavailable);
    CHECK(second.status().message().find("in use by another store in this process") != std::string::npos);
  }
  must_open(dir.path());  // closed: free again
  // A holder killed with SIGKILL leaves no stale lock.
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto held = open_at(dir.path());
    const char byte = held.is_ok() ? 'y' : 'n';
    (void)!write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  CHECK(byte == 'y');
  const Status held_elsewhere = open_at(dir.path()).status();
  CHECK(held_elsewhere.code() == Status::Code::Unavailable);
  CHECK(held_elsewhere.message().find("in use by another process (pid " + std::to_string(child) + ")") !=
        std::string::npos);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  must_open(dir.path());
}

TEST_CASE("lmdb store: bad options and paths", "[storage][lmdb]") {
  CHECK(open_at("").status().code() == Status::Code::InvalidArgument);
  TempDir dir;
  fs::create_directories(dir.root());
  std::ofstream(dir.path()) << "a file, not a directory";
  CHECK(open_at(dir.path()).status().code() == Status::Code::IoError);
}

TEST_CASE("lmdb store: foreign and newer directories are refused clearly", "[storage][lmdb]") {
  TempDir dir;
  std::string path = dir.path();

  SECTION("another program's LMDB environment") {
    raw_edit(path, [](MDB_txn* txn) { raw_put(txn, nullptr, "user:1", "alice"); });
    CHECK(open_at(path).status().to_string() == "Corruption: " + path + ": not a broker data directory");
  }
  SECTION("a plain value where our meta database should be") {
    raw_edit(path, [](MDB_txn* txn) { raw_put(txn, nullptr, "meta", "not a db"); });
    CHECK(open_at(path).status().message() == path + ": not a broker data directory");
  }
  SECTION("a meta record with another magic") {
    raw_edit(path, [](MDB_txn* txn) {
      raw_put(txn, "meta", "meta", storage::encode_meta(storage::MetaRecord{"someone-else", 1}));
    });
    CHECK(open_at(path).status().message() == path + ": not a broker data directory");
  }
  SECTION("a newer format version") {
    { must_open(path); }
    raw_edit(path, [](MDB_txn* txn) {
      raw_put(txn, "meta", "meta",
              storage::encode_meta(storage::MetaRecord{std::string(storage::kStoreMagic), 7}));
    });
    CHECK(open_at(path).status().message() == path + ": unsupported format version 7");
  }
  SECTION("the meta record missing from a non-empty environment") {
    { must_open(path); }
    raw_edit(path, [](MDB_txn* txn) { raw_del(txn, "meta", "meta"); });
    CHECK(open_at(path).status().message() == path + ": meta record missing");
  }
  SECTION("a damaged meta record") {
    { must_open(path); }
    raw_edit(path, [](MDB_txn* txn) { raw_put(txn, "meta", "meta", "\x01\x01garbage"); });
    auto st = open_at(path).status();
    CHECK(st.code() == Status::Code::Corruption);
    CHECK(st.message() == path + ": meta record: checksum mismatch");
  }
}

TEST_CASE("lmdb store: damaged data files give Corruption, not a crash", "[storage][lmdb]") {
  TempDir dir;
  std::string path = dir.path();
  fs::path data = fs::path(path) / "data.mdb";

  SECTION("text where data.mdb should be") {
    fs::create_directories(path);
    std::ofstream(data) << "this is not an LMDB file\n";
    auto st = open_at(path).status();
    CHECK(st.code() == Status::Code::Corruption);
    CHECK(st.message().find("not a broker data directory") != std::string::npos);
  }
  SECTION("8 KiB of garbage where data.mdb should be") {
    fs::create_directories(path);
    std::ofstream(data, std::ios::binary) << std::string(8192, '\x5a');
    CHECK(open_at(path).status().code() == Status::Code::Corruption);
  }
  SECTION("a data.mdb cut short") {
    {
      StorePtr store = must_open(path);
      fill_some(*store, 500);
    }
    auto full = fs::file_size(data);
    REQUIRE(full > 16 * 4096);
    for (std::uintmax_t size : {std::uintmax_t{100}, std::uintmax_t{4096}, std::uintmax_t{3 * 4096},
                                full / 2}) {
      fs::resize_file(data, size);
      auto st = open_at(path).status();
      INFO("size " << size << ": " << st.to_string());
      CHECK(st.code() == Status::Code::Corruption);
      CHECK(fs::file_size(data) == size);  // left as it was found
    }
  }
}

TEST_CASE("lmdb store: a data.mdb that ends before pages LMDB freed unwritten opens", "[storage][lmdb]") {
  // LMDB counts pages a transaction took from the end and freed before committing in the meta
  // page's last page, but never writes them. Cutting free pages off the end makes that file.
  TempDir dir;
  const std::string path = dir.path();
  const fs::path data = fs::path(path) / "data.mdb";
  {
    StorePtr store = must_open(path);
    WriteBatch sessions;
    for (int i = 0; i < 20; ++i) sessions.put_session(make_session("car-" + std::to_string(i)));
    REQUIRE(submit_and_wait(*store, std::move(sessions)));
    fill_some(*store, 2000);
    WriteBatch drop;
    for (std::uint64_t id = 1; id <= 2000; ++id) drop.delete_message(id);
    REQUIRE(submit_and_wait(*store, std::move(drop)));
    for (int i = 0; i < 4; ++i) {  // later commits move what the delete wrote into freed pages
      WriteBatch touch;
      touch.put_session(make_session("car-0"));
      REQUIRE(submit_and_wait(*store, std::move(touch)));
    }
  }
  std::uint64_t last = 0, free_at_end = 0, page = 0;
  {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    REQUIRE(mdb_env_open(env, path.c_str(), MDB_RDONLY, 0644) == 0);
    MDB_envinfo info{};
    MDB_stat st{};
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    last = info.me_last_pgno;
    page = st.ms_psize;
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0);
    while (free_at_end < last && storage::lmdb::pages_free(txn, last - free_at_end, last)) ++free_at_end;
    mdb_txn_abort(txn);
    mdb_env_close(env);
  }
  INFO("last page " << last << ", free pages at the end " << free_at_end);
  REQUIRE(free_at_end >= 4);
  fs::resize_file(data, (last + 1 - free_at_end) * page);

  StorePtr store = must_open(path);
  Collector r;
  REQUIRE(store->load(r).is_ok());
  CHECK(r.sessions.size() == 20);
  CHECK(r.messages.empty());
  fill_some(*store, 2000);  // LMDB writes over the pages it lacked
}

TEST_CASE("lmdb store: a corrupt record is reported by name", "[storage][lmdb]") {
  TempDir dir;
  std::string path = dir.path();
  {
    StorePtr store = must_open(path);
    fill_some(*store, 10);
    WriteBatch b;
    b.append_log(make_message(0, "log", "x", 1));
    REQUIRE(submit_and_wait(*store, std::move(b)));
  }
  std::string good = storage::encode_message(make_message(5, "t", std::string(200, 'x')));
  std::string bad = good;
  bad[good.size() / 2] = static_cast<char>(bad[good.size() / 2] ^ 0x01);
  raw_edit(path, [&](MDB_txn* txn) {
    raw_put(txn, "messages", storage::u64_key(5), bad);
    raw_put(txn, "log", storage::u64_key(1), "\x01\x05");
  });
  StorePtr store = must_open(path);  // open reads meta only; records are checked on read
  Status st;
  load_all(*store, &st);
  CHECK(st.to_string() == "Corruption: " + path + ": messages record 5: message record: checksum mismatch");
  auto log = store->read_log(0, 10);
  CHECK(log.status().message() == path + ": log record 1: log record: truncated (2 bytes)");

  // A record stored under another record's key is caught too.
  store.reset();
  raw_edit(path, [&](MDB_txn* txn) { raw_put(txn, "messages", storage::u64_key(5), storage::encode_message(make_message(6))); });
  store = must_open(path);
  load_all(*store, &st);
  CHECK(st.message() == path + ": messages record 5: key does not match the record");
}

TEST_CASE("lmdb store: move_aside_unreadable starts empty and keeps the old dir", "[storage][lmdb]") {
  TempDir dir;
  std::string path = dir.path();
  raw_edit(path, [](MDB_txn* txn) { raw_put(txn, nullptr, "user:1", "alice"); });
  LogCapture capture;
  auto opened = open_at(path + "/", 64ull << 20, false, /*move_aside=*/true);
  REQUIRE(opened.status().to_string() == "OK");
  StorePtr store = std::move(opened).value();
  CHECK(load_all(*store).order.empty());
  fill_some(*store, 1);

  int broken = 0;
  for (const auto& entry : fs::directory_iterator(dir.root())) {
    std::string name = entry.path().filename().string();
    if (name.rfind("store.broken-", 0) == 0) {
      ++broken;
      CHECK(fs::exists(entry.path() / "data.mdb"));
    }
  }
  CHECK(broken == 1);
  auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("not a broker data directory") != std::string::npos);
  CHECK(lines[0].find("store.broken-") != std::string::npos);
}

TEST_CASE("lmdb store: move_aside_unreadable also moves a store whose records are damaged", "[storage][lmdb]") {
  TempDir dir;
  std::string path = dir.path();
  {
    StorePtr store = must_open(path);
    fill_some(*store, 10);
  }
  std::string bad = storage::encode_message(make_message(5, "t", std::string(200, 'x')));
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x01);
  raw_edit(path, [&](MDB_txn* txn) { raw_put(txn, "messages", storage::u64_key(5), bad); });
  LogCapture capture;
  auto opened = open_at(path, 64ull << 20, false, /*move_aside=*/true);
  REQUIRE(opened.status().to_string() == "OK");
  CHECK(load_all(*opened.value()).order.empty());  // a fresh, empty store
  auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("checksum mismatch") != std::string::npos);
  CHECK(lines[0].find("store.broken-") != std::string::npos);
}

TEST_CASE("lmdb store: a full map fails the batch with Unavailable; the store stays usable",
          "[storage][lmdb]") {
  TempDir dir;
  LogCapture capture;
  StorePtr store = must_open(dir.path(), 256u << 10);
  Status failure;
  std::uint64_t written = 0;
  for (std::uint64_t i = 1; i <= 200 && failure.is_ok(); ++i) {
    WriteBatch b;
    b.put_message(make_message(i, "t", std::string(8192, 'p')));
    failure = submit_and_wait(*store, std::move(b));
    if (failure) written = i;
  }
  REQUIRE(!failure.is_ok());
  CHECK(failure.to_string() == "Unavailable: store full: map size 262144 bytes reached");
  CHECK(written > 5);

  // More failures do not log again until a write succeeds.
  WriteBatch again;
  again.put_message(make_message(1000, "t", std::string(8192, 'p')));
  CHECK(submit_and_wait(*store, std::move(again)).code() == Status::Code::Unavailable);
  CHECK(capture.lines().size() == 1);

  // Reads still work, and freeing space lets writes through again.
  CHECK(load_all(*store).messages.size() == written);
  WriteBatch free_some;
  for (std::uint64_t i = 1; i <= 5; ++i) free_some.delete_message(i);
  REQUIRE(submit_and_wait(*store, std::move(free_some)));
  WriteBatch small;
  small.put_message(make_message(2000, "t", "small"));
  REQUIRE(submit_and_wait(*store, std::move(small)));
  CHECK(load_all(*store).messages.size() == written - 5 + 1);
  REQUIRE(store->commit_consumer_offset("c", 3));
  auto stats = storage::lmdb_store_stats(*store);
  REQUIRE(stats.has_value());
  CHECK(stats->failed_batches == 2);
}

TEST_CASE("lmdb store: one oversized batch in a group fails alone", "[storage][lmdb]") {
  TempDir dir;
  LogCapture capture;
  StorePtr store = must_open(dir.path(), 256u << 10);
  std::vector<Status> results(3);
  storage::lmdb_store_hold_writer_for_test(*store, true);
  for (std::size_t i = 0; i < 3; ++i) {
    WriteBatch b;
    b.put_message(make_message(i + 1, "t", i == 1 ? std::string(1u << 20, 'p') : "small"));
    store->submit(std::move(b), [&results, i](const Status& st) { results[i] = st; });
  }
  storage::lmdb_store_hold_writer_for_test(*store, false);
  store->flush();
  CHECK(results[0].is_ok());
  CHECK(results[1].code() == Status::Code::Unavailable);
  CHECK(results[2].is_ok());
  Collector c = load_all(*store);
  REQUIRE(c.messages.size() == 2);
  CHECK(c.messages[1].id == 3);
  auto stats = storage::lmdb_store_stats(*store).value();
  CHECK(stats.failed_groups == 2);  // the group, then the big batch alone
  CHECK(stats.failed_batches == 1);
}

TEST_CASE("lmdb store: retained messages on topics longer than a key are kept", "[storage][lmdb]") {
  // Two long topics that share their first 600 bytes, and one exactly at the key limit.
  const std::string common(600, 't');
  const std::string a = common + "/a", b = common + "/b", at_limit(511, 'k');
  TempDir dir;
  {
    StorePtr store = must_open(dir.path());
    WriteBatch w;
    w.put_retained(make_message(1, a, "first"));
    w.put_retained(make_message(2, b, "second"));
    w.put_retained(make_message(3, at_limit, "third"));
    w.put_retained(make_message(4, a, "first again"));  // replaces its own key only
    REQUIRE(submit_and_wait(*store, std::move(w)));
  }
  {
    StorePtr store = must_open(dir.path());
    Status st;
    Collector c = load_all(*store, &st);
    REQUIRE(st);
    std::map<std::string, std::string> got;
    for (const auto& m : c.retained) got[m.message.topic] = m.message.payload;
    CHECK(got == std::map<std::string, std::string>{{a, "first again"}, {b, "second"}, {at_limit, "third"}});
    WriteBatch d;
    d.delete_retained(b);
    REQUIRE(submit_and_wait(*store, std::move(d)));
  }
  StorePtr store = must_open(dir.path());
  Status st;
  Collector c = load_all(*store, &st);
  REQUIRE(st);
  REQUIRE(c.retained.size() == 2);
  for (const auto& m : c.retained) CHECK(m.message.topic != b);
}

TEST_CASE("lmdb store: keys LMDB cannot hold fail the batch with InvalidArgument", "[storage][lmdb]") {
  TempDir dir;
  LogCapture capture;
  StorePtr store = must_open(dir.path());
  WriteBatch b;
  b.put_session(make_session(std::string(600, 'c')));
  CHECK(submit_and_wait(*store, std::move(b)).code() == Status::Code::InvalidArgument);
  WriteBatch ok;
  ok.put_session(make_session(std::string(502, 'c')));
  ok.put_delivery(make_delivery(std::string(502, 'c'), 1));
  CHECK(submit_and_wait(*store, std::move(ok)).is_ok());
  CHECK(store->commit_consumer_offset("", 1).code() == Status::Code::InvalidArgument);
}

TEST_CASE("lmdb store: group commit from 4 threads keeps each thread's order", "[storage][lmdb]") {
  TempDir dir;
  StorePtr store = must_open(dir.path(), 256ull << 20, /*sync=*/true);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  // Written only by completions, which run one at a time on the writer thread.
  std::vector<std::vector<int>> completed(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        WriteBatch b;
        auto id = static_cast<std::uint64_t>(t * kPerThread + i + 1);
        b.put_message(make_message(id, "t", std::string(100, 'p')));
        b.put_delivery(make_delivery("c" + std::to_string(t), id));
        store->submit(std::move(b), [&, t, i](const Status& st) {
          if (!st) failures.fetch_add(1);
          completed[static_cast<std::size_t>(t)].push_back(i);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  store->flush();
  CHECK(failures.load() == 0);
  for (const auto& seq : completed) {
    REQUIRE(seq.size() == kPerThread);
    bool in_order = true;
    for (int i = 0; i < kPerThread; ++i) in_order = in_order && seq[static_cast<std::size_t>(i)] == i;
    CHECK(in_order);
  }
  auto stats = storage::lmdb_store_stats(*store).value();
  INFO("groups " << stats.groups << ", max group " << stats.max_group_size);
  CHECK(stats.batches == kThreads * kPerThread);
  CHECK(stats.groups < stats.batches);
  CHECK(stats.max_group_size > 1);
  CHECK(stats.max_group_size <= storage::kMaxGroupBatches);
  CHECK(load_all(*store).messages.size() == kThreads * kPerThread);
}

TEST_CASE("lmdb store: a held queue commits as one group", "[storage][lmdb]") {
  TempDir dir;
  StorePtr store = must_open(dir.path());
  auto before = storage::lmdb_store_stats(*store).value();
  storage::lmdb_store_hold_writer_for_test(*store, true);
  for (std::uint64_t i = 1; i <= 1500; ++i) {
    WriteBatch b;
    b.put_message(make_message(i));
    store->submit(std::move(b), nullptr);
  }
  storage::lmdb_store_hold_writer_for_test(*store, false);
  store->flush();
  auto after = storage::lmdb_store_stats(*store).value();
  CHECK(after.groups - before.groups == 2);  // bounded at kMaxGroupBatches
  CHECK(after.max_group_size == storage::kMaxGroupBatches);
}

TEST_CASE("lmdb store: destruction drains the queue; completions may call the store",
          "[storage][lmdb]") {
  TempDir dir;
  std::atomic<int> done{0};
  Status inline_commit = Status::internal("not run");
  {
    StorePtr store = must_open(dir.path());
    Store* raw = store.get();
    for (std::uint64_t i = 1; i <= 1000; ++i) {
      WriteBatch b;
      b.put_message(make_message(i));
      store->submit(std::move(b), [&done](const Status& st) { done += st.is_ok() ? 1 : 0; });
    }
    WriteBatch last;
    store->submit(std::move(last), [raw, &inline_commit](const Status&) {
      raw->flush();  // returns at once on the writer thread instead of deadlocking
      inline_commit = raw->commit_consumer_offset("from-completion", 9);
    });
  }
  CHECK(done.load() == 1000);
  CHECK(inline_commit.is_ok());
  StorePtr store = must_open(dir.path());
  CHECK(load_all(*store).messages.size() == 1000);
  CHECK(store->consumer_offset("from-completion").value() == 9);
}

TEST_CASE("lmdb store: batches acknowledged before SIGKILL survive it", "[storage][lmdb]") {
  constexpr std::uint64_t kBatches = 400;
  std::mt19937 rng(20240611);
  int killed_early = 0;
  for (int iteration = 0; iteration < 4; ++iteration) {
    TempDir dir;
    const bool sync = iteration % 2 == 0;  // MDB_NOSYNC must survive a process crash too
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      auto store = open_at(dir.path(), 64ull << 20, sync);
      if (!store) _exit(2);
      for (std::uint64_t i = 1; i <= kBatches; ++i) {
        WriteBatch b;
        b.put_message(make_message(i, "t", std::string(100, 'p')));
        b.put_delivery(make_delivery("car", i));
        b.append_log(make_message(i, "log", "x", i));
        store.value()->submit(std::move(b), [fd = fds[1], i](const Status& st) {
          if (st) (void)!write(fd, &i, sizeof i);
        });
        // Small groups, so the kill lands between commits and inside them, not after the end.
        if (i % 4 == 0) store.value()->flush();
      }
      store.value()->flush();
      _exit(0);  // no destructors, no Catch2 teardown in the child
    }
    close(fds[1]);
    const std::uint64_t kill_after = 1 + rng() % (kBatches - 50);
    std::set<std::uint64_t> reported;
    std::uint64_t id = 0;
    bool killed = false;
    while (read(fds[0], &id, sizeof id) == static_cast<ssize_t>(sizeof id)) {
      reported.insert(id);
      if (!killed && reported.size() >= kill_after) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);  // EOF: the child is gone; what it wrote before dying was read above
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    INFO("iteration " << iteration << ", kill after " << kill_after << ", reported " << reported.size());
    killed_early += reported.size() < kBatches ? 1 : 0;
    CHECK((killed || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)));

    StorePtr store = must_open(dir.path());
    Status st;
    Collector c = load_all(*store, &st);
    REQUIRE(st);
    std::set<std::uint64_t> present;
    for (const auto& m : c.messages) present.insert(m.id);
    std::uint64_t missing = 0;
    for (std::uint64_t r : reported) missing += present.count(r) == 0 ? 1 : 0;
    CHECK(missing == 0);
    // Batches apply in order: what survived is a prefix 1..n, deliveries and log alike.
    CHECK((present.empty() || *present.rbegin() == present.size()));
    CHECK(c.deliveries.size() == present.size());
    CHECK(store->read_log(0, kBatches + 1).value().size() == present.size());
    CHECK(store->find_log_time(~0ull).value() == present.size() + 1);
  }
  CHECK(killed_early > 0);  // else the child always finished first and nothing was tested
}

TEST_CASE("lmdb store: large records are kept in chunks, and none outlive their record", "[storage][lmdb]") {
  TempDir dir;
  const std::string path = dir.path();
  std::mt19937_64 rng(7);
  StoredMessage big = make_message(1, "files/car-1", random_bytes(1'000'000, rng));
  StoredMessage retained = make_message(2, "cfg/all", random_bytes(300'000, rng));
  StoredMessage logged = make_message(3, "telemetry", random_bytes(200'000, rng), 9);
  StoredSession session = make_session("car-1");
  session.will = StoredWill{make_message(0, "will/t", random_bytes(100'000, rng)).message, 10, 0};
  {
    StorePtr store = must_open(path);
    WriteBatch b;
    b.put_message(big);
    b.put_message(make_message(4, "small", "s"));
    b.put_retained(retained);
    b.put_session(session);
    b.append_log(logged);
    REQUIRE(submit_and_wait(*store, std::move(b)));
  }
  CHECK(raw_count(path, "chunks") > 100);
  {
    StorePtr store = must_open(path);
    Status st;
    Collector c = load_all(*store, &st);
    REQUIRE(st);
    REQUIRE(c.messages.size() == 2);
    CHECK(test::equal(c.messages[0], big));
    CHECK(c.messages[1].message.payload == "s");
    REQUIRE(c.retained.size() == 1);
    CHECK(test::equal(c.retained[0], retained));
    REQUIRE(c.sessions.size() == 1);
    CHECK(test::equal(c.sessions[0], session));
    auto log = store->read_log(1, 10);
    REQUIRE(log.value().size() == 1);
    CHECK(test::equal(log.value()[0].message, logged));
    CHECK(store->find_log_time(9).value() == 1);

    // Replacing, deleting and trimming leave no chunk behind.
    WriteBatch b;
    b.put_retained(make_message(5, "cfg/all", "small now"));
    b.delete_message(1);
    session.will.reset();
    b.put_session(session);
    REQUIRE(submit_and_wait(*store, std::move(b)));
    REQUIRE(store->trim_log(UINT64_MAX, 0).value() == 1);
    c = load_all(*store, &st);
    REQUIRE(st);
    CHECK(c.messages.size() == 1);
    CHECK(c.retained[0].message.payload == "small now");
    WriteBatch again;  // large again, then gone with the session
    session.will = StoredWill{make_message(0, "will/t", random_bytes(70'000, rng)).message, 1, 0};
    again.put_session(session);
    REQUIRE(submit_and_wait(*store, std::move(again)));
    WriteBatch gone;
    gone.delete_session("car-1");
    REQUIRE(submit_and_wait(*store, std::move(gone)));
  }
  CHECK(raw_count(path, "chunks") == 0);
}

TEST_CASE("lmdb store: a missing or damaged chunk is reported by name", "[storage][lmdb]") {
  TempDir dir;
  const std::string path = dir.path();
  {
    StorePtr store = must_open(path);
    WriteBatch b;
    b.put_message(make_message(7, "files/x", std::string(100'000, 'f')));
    REQUIRE(submit_and_wait(*store, std::move(b)));
  }
  const std::string prefix = path + ": messages record 7: ";
  SECTION("missing") {
    raw_edit(path, [](MDB_txn* txn) { raw_del(txn, "chunks", storage::chunk_key(1, 1)); });
    const Status st = load_status(path);
    CHECK(st.code() == Status::Code::Corruption);
    CHECK(st.message().rfind(prefix + "chunk 2 of ", 0) == 0);
  }
  SECTION("shorter") {
    raw_edit(path, [](MDB_txn* txn) { raw_put(txn, "chunks", storage::chunk_key(1, 2), "short"); });
    const Status st = load_status(path);
    CHECK(st.message() == prefix + "chunks of record 1 hold other than " +
                              std::to_string(storage::encode_message(make_message(7, "files/x", std::string(100'000, 'f'))).size()) +
                              " bytes");
  }
  SECTION("flipped byte: the record's own checksum catches it") {
    raw_edit(path, [](MDB_txn* txn) {
      MDB_dbi dbi = 0;
      REQUIRE(mdb_dbi_open(txn, "chunks", 0, &dbi) == 0);
      const std::string key = storage::chunk_key(1, 3);
      MDB_val k{key.size(), const_cast<char*>(key.data())}, v{};
      REQUIRE(mdb_get(txn, dbi, &k, &v) == 0);
      std::string value(static_cast<const char*>(v.mv_data), v.mv_size);
      value[100] = static_cast<char>(value[100] ^ 0x01);
      raw_put(txn, "chunks", key, value);
    });
    const Status st = load_status(path);
    CHECK(st.message() == prefix + "message record: checksum mismatch");
  }
  // The store can still be moved aside and started empty.
  auto moved = open_at(path, 64ull << 20, false, /*move_aside=*/true);
  REQUIRE(moved);
  CHECK(load_all(*moved.value()).messages.empty());
}

TEST_CASE("lmdb store: files queued and removed among small records reuse freed space", "[storage][lmdb]") {
  // Without chunks, LMDB needs one run of free pages as long as each file; small records
  // written between the files split the runs, and this churn grew the file to 52 MB.
  TempDir dir;
  const std::string path = dir.path();
  StorePtr store = must_open(path, 1ull << 30);
  std::mt19937_64 rng(11);
  std::vector<std::pair<std::uint64_t, std::size_t>> files;  // id, size
  std::size_t live = 0;
  std::uint64_t next_id = 1, oldest_small = 1'000'000, next_small = 1'000'000;
  const std::string content(2'000'000, 'f');
  for (int round = 0; round < 600; ++round) {
    const std::size_t size = 200'000 + rng() % 1'800'000;
    WriteBatch file;
    file.put_message(make_message(next_id, "files/car", content.substr(0, size)));
    REQUIRE(submit_and_wait(*store, std::move(file)));
    files.emplace_back(next_id++, size);
    live += size;
    for (int i = 0; i < 40; ++i) {  // commands and acknowledgements between the files
      WriteBatch small;
      small.put_message(make_message(next_small++, "cmd/car", std::string(100 + rng() % 3000, 'c')));
      if (next_small - oldest_small > 2000) small.delete_message(oldest_small++);
      REQUIRE(submit_and_wait(*store, std::move(small)));
    }
    while (live > 8'000'000) {  // receivers take files in no particular order
      const std::size_t at = rng() % files.size();
      WriteBatch done;
      done.delete_message(files[at].first);
      REQUIRE(submit_and_wait(*store, std::move(done)));
      live -= files[at].second;
      files.erase(files.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }
  store.reset();
  const auto size = fs::file_size(fs::path(path) / "data.mdb");
  INFO("data.mdb: " << size << " bytes for about 12 MB live");
  CHECK(size < 32'000'000u);  // 21 MB measured; 52 MB with each file in one piece
}
