// The LMDB Store: see lmdb_store.hpp for the layout and the write path.
#include "storage/lmdb/lmdb_store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "storage/dir_lock.hpp"
#include "storage/lmdb/chunked_values.hpp"
#include "storage/lmdb/lmdb_env.hpp"
#include "storage/record_codec.hpp"
#include "util/log.hpp"
#include "util/log_throttle.hpp"

namespace broker::storage {
namespace {

using lmdb::ChunkedValues;
using lmdb::Cursor;
using lmdb::Env;
using lmdb::from_val;
using lmdb::lmdb_status;
using lmdb::pages_free;
using lmdb::to_val;
using lmdb::Txn;

constexpr unsigned kMaxDbs = 16;
// LMDB's compiled-in key limit (mdb_env_get_maxkeysize) in Debian's build and upstream's.
constexpr std::size_t kMaxKeyBytes = 511;
constexpr std::string_view kMetaKey = "meta";
constexpr std::string_view kLogNextKey = "log_next";
constexpr std::string_view kAliveKey = "alive";  // the latest WriteBatch::MarkAlive
// Rough per-op overhead for bounding a group's size.
constexpr std::size_t kOpOverheadBytes = 64;

struct Dbis {
  MDB_dbi meta = 0, messages = 0, sessions = 0, deliveries = 0, retained = 0, log = 0, offsets = 0,
          chunks = 0;
};

// Retained records are keyed by topic. A topic longer than an LMDB key (topics go up to 64 KiB)
// is keyed by its first bytes, a NUL (which no topic contains, so no short topic's key is the
// same) and a 64-bit FNV-1a hash of the whole topic; the record holds the topic itself.
// Where this process maps `file` (LMDB does not say unless the map is fixed): the start of
// its mapping in /proc/self/maps; null when not found.
const char* mapped_at(const std::filesystem::path& file) {
  std::error_code ec;
  const std::string want = std::filesystem::canonical(file, ec).string();
  if (ec) return nullptr;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode   path"
    const auto path_at = line.find('/');
    if (path_at == std::string::npos || line.compare(path_at, std::string::npos, want) != 0) continue;
    std::istringstream fields(line);
    std::uint64_t start = 0;
    fields >> std::hex >> start;
    std::string rest;
    fields >> rest;  // "-end"
    fields >> rest;  // perms
    std::uint64_t offset = 1;
    fields >> std::hex >> offset;
    if (offset == 0) return reinterpret_cast<const char*>(start);
  }
  return nullptr;
}

std::string retained_key(std::string_view topic) {
  if (topic.size() <= kMaxKeyBytes) return std::string(topic);
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char ch : topic) {
    hash ^= ch;
    hash *= 1099511628211ull;
  }
  std::string key(topic.substr(0, kMaxKeyBytes - 17));
  key.push_back('\0');
  key += fmt::format("{:016x}", hash);
  return key;
}

Status check_key(std::string_view key, std::string_view what) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return Status::invalid_argument(
        fmt::format("{} of {} bytes cannot be stored (1..{} bytes)", what, key.size(), kMaxKeyBytes));
  }
  return Status::ok();
}

std::size_t estimate_bytes(const WriteBatch& batch) {
  std::size_t n = 0;
  auto message_bytes = [](const StoredMessage& m) {
    return m.message.topic.size() + m.message.payload.size() + m.origin_client_id.size();
  };
  for (const auto& op : batch.ops()) {
    n += kOpOverheadBytes;
    if (auto* p = std::get_if<WriteBatch::PutMessage>(&op)) n += message_bytes(p->message);
    if (auto* p = std::get_if<WriteBatch::PutRetained>(&op)) n += message_bytes(p->message);
    if (auto* p = std::get_if<WriteBatch::AppendLog>(&op)) n += message_bytes(p->message);
    if (auto* p = std::get_if<WriteBatch::PutSession>(&op)) {
      n += p->session.subscriptions.size() * kOpOverheadBytes;
      if (p->session.will) n += p->session.will->message.payload.size();
    }
  }
  return n;
}

// Printable for error messages: the text when it is plain, hex otherwise, shortened.
std::string describe_key(std::string_view key, bool numeric) {
  if (numeric) {
    if (auto v = parse_u64_key(key)) return std::to_string(*v);
  }
  bool plain = true;
  for (char c : key) plain = plain && c >= 0x20 && c < 0x7f;
  std::string text = plain ? std::string(key) : "0x" + to_hex(key);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Thread safety: submit(), flush(), the log calls and the accessors are safe from any thread;
// load() once before any submit(). Completions run on the writer thread, in submission order.
// flush(), commit_consumer_offset() and trim_log() may be called from a completion: the first
// returns at once (it cannot wait for its own thread), the other two run inline.
class LmdbStore final : public Store {
 public:
  static Result<std::unique_ptr<LmdbStore>> open(const LmdbStoreOptions& options);
  ~LmdbStore() override;

  Status load(StoreVisitor& visitor) override;
  void submit(WriteBatch&& batch, std::function<void(const Status&)> done) override;
  void flush() override;
  Result<std::vector<LogRecord>> read_log(std::uint64_t from, std::size_t max) override;
  Result<std::uint64_t> find_log_time(std::uint64_t time_ms) override;
  Result<std::uint64_t> consumer_offset(std::string_view consumer) override;
  Status commit_consumer_offset(std::string_view consumer, std::uint64_t next) override;
  Result<std::uint64_t> trim_log(std::uint64_t min_arrival_ms, std::uint64_t max_bytes) override;

  LmdbStoreStats stats() const;
  void hold_writer(bool hold);

 private:
  // What one write transaction carries along while batches are applied to it.
  struct WriteContext {
    MDB_txn* txn;
    std::uint64_t next_sequence;
  };
  using Task = std::function<Status(WriteContext&)>;
  struct Entry {
    WriteBatch batch;
    Task task;  // instead of the batch: commit_consumer_offset, trim_log
    std::function<void(const Status&)> done;
    std::size_t bytes = 0;
  };

  explicit LmdbStore(std::string dir) : dir_(std::move(dir)) {}
  Status open_env(const LmdbStoreOptions& options);
  // The data file holds every page the meta page counts that is not free.
  Status check_file_length(std::uint64_t last_page, std::uint64_t page_size);
  Status open_databases();

  void writer_loop();
  void run_group(std::vector<Entry>& group);
  Status apply_group(std::vector<Entry>& group, std::size_t begin, std::size_t end);
  Status apply_batch(WriteContext& ctx, const WriteBatch& batch);
  Status apply_op(WriteContext& ctx, const WriteBatch::Op& op);
  Status put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value);
  Status del(MDB_txn* txn, MDB_dbi dbi, std::string_view key);
  void complete(Entry& entry, const Status& status);
  Status run_task(Task task);

  Result<Txn> begin_read() const;
  Status read_log_next(MDB_txn* txn, std::uint64_t& next) const;
  // The log record under cursor position (k, v), its chunks joined in `scratch` if it has any.
  Result<LogRecord> read_log_record(MDB_txn* txn, const MDB_val& k, const MDB_val& v,
                                    std::string& scratch) const;
  Status corrupt_record(std::string_view db, std::string_view key, bool numeric,
                        const Status& why) const;

  const std::string dir_;
  DirLock dir_lock_;  // before env_: released after the environment closed
  Env env_;
  Dbis dbi_;
  ChunkedValues values_;  // records of every database but meta, deliveries and offsets
  std::uint64_t map_size_ = 0;
  // Where the data file is mapped: load() checks every record lies inside the file, since a
  // damaged page can name a length past its end (reading that is a SIGBUS).
  const char* map_base_ = nullptr;
  std::uint64_t next_sequence_ = 1;  // writer thread only: the committed next log sequence
  bool full_logged_ = false;         // writer thread only: "store full" said once per episode
  // Writer thread only: other write errors (a full disk) are said at most once a second, with
  // how many came in between, so that the log does not fill what is left of the disk.
  log::LogThrottle error_log_{1000};
  std::uint64_t errors_unlogged_ = 0;

  std::mutex mu_;
  std::condition_variable work_cv_;   // writer waits for entries
  std::condition_variable flush_cv_;  // flush() waits for completions
  std::deque<Entry> queue_;           // guarded by mu_
  std::uint64_t submitted_ = 0;       // guarded by mu_
  std::uint64_t completed_ = 0;       // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool held_ = false;                 // guarded by mu_
  std::thread writer_;
  std::thread::id writer_id_;

  std::atomic<std::uint64_t> stat_batches_{0};
  std::atomic<std::uint64_t> stat_groups_{0};
  std::atomic<std::uint64_t> stat_max_group_{0};
  std::atomic<std::uint64_t> stat_failed_groups_{0};
  std::atomic<std::uint64_t> stat_failed_batches_{0};
};

Result<std::unique_ptr<LmdbStore>> LmdbStore::open(const LmdbStoreOptions& options) {
  if (options.dir.empty()) return Status::invalid_argument("store directory is empty");
  std::unique_ptr<LmdbStore> store(new LmdbStore(options.dir));
  if (Status st = store->open_env(options); !st) return st;
  if (Status st = store->open_databases(); !st) return st;
  store->writer_ = std::thread([s = store.get()] { s->writer_loop(); });
  store->writer_id_ = store->writer_.get_id();
  return store;
}

Status LmdbStore::open_env(const LmdbStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::io_error(fmt::format("{}: cannot create directory: {}", dir_, ec.message()));
  if (!std::filesystem::is_directory(dir_, ec)) {
    return Status::io_error(fmt::format("{}: not a directory", dir_));
  }
  if (Status st = dir_lock_.acquire(dir_); !st) return st;
  if (Status st = env_.create(); !st) return st;
  MDB_env* env = env_.get();
  if (int rc = mdb_env_set_maxdbs(env, kMaxDbs); rc != 0) return lmdb_status(rc, "mdb_env_set_maxdbs");
  if (int rc = mdb_env_set_mapsize(env, static_cast<std::size_t>(options.map_size)); rc != 0) {
    return lmdb_status(rc, "mdb_env_set_mapsize");
  }
  // MDB_NOTLS: reader slots follow transactions, not threads, so any number of short-lived
  // threads may read without each pinning a slot until it exits.
  unsigned flags = MDB_NOTLS | (options.sync ? 0u : static_cast<unsigned>(MDB_NOSYNC));
  int rc = mdb_env_open(env, dir_.c_str(), flags, 0644);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    return Status::corruption(fmt::format("{}: not a broker data directory ({})", dir_, mdb_strerror(rc)));
  }
  if (rc != 0) return Status::io_error(fmt::format("{}: cannot open store: {}", dir_, mdb_strerror(rc)));

  MDB_envinfo info{};
  MDB_stat st{};
  mdb_env_info(env, &info);
  mdb_env_stat(env, &st);
  map_size_ = info.me_mapsize;
  if (Status s = check_file_length(info.me_last_pgno, st.ms_psize); !s) return s;
  map_base_ = mapped_at(std::filesystem::path(dir_) / "data.mdb");
  int stale = 0;
  mdb_reader_check(env, &stale);  // slots of readers that died (a killed process)
  return Status::ok();
}

Status LmdbStore::check_file_length(std::uint64_t last_page, std::uint64_t page_size) {
  // A data file cut short would make LMDB read past its end through the map (SIGBUS), so the
  // size the meta page promises is checked before any other page is touched. But LMDB also
  // counts there the pages a transaction took from the end and freed again before it
  // committed, which it never writes: a file may end early if every page it lacks is free.
  const std::filesystem::path path = std::filesystem::path(dir_) / "data.mdb";
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Status::io_error(fmt::format("{}: data.mdb: {}", dir_, ec.message()));
  const std::uint64_t need = (last_page + 1) * page_size;
  if (size >= need) return Status::ok();
  // Zero pages stand in for the missing ones while the free list is read, so that reading it
  // cannot fault wherever its own pages are. They stay when all are free (LMDB writes over
  // free pages as it reuses them); a truncated file gets its own length back.
  std::filesystem::resize_file(path, need, ec);
  if (ec) return Status::io_error(fmt::format("{}: data.mdb: {}", dir_, ec.message()));
  Txn txn;
  const bool all_free = txn.begin(env_.get(), MDB_RDONLY) == 0 &&
                        pages_free(txn.get(), size / page_size, last_page);
  txn.abort();
  if (all_free) return Status::ok();
  std::filesystem::resize_file(path, size, ec);
  return Status::corruption(fmt::format("{}: data file truncated ({} bytes, {} needed)", dir_, size, need));
}

Status LmdbStore::open_databases() {
  Txn txn;
  if (int rc = txn.begin(env_.get(), 0); rc != 0) return lmdb_status(rc, "mdb_txn_begin");
  MDB_dbi main_dbi = 0;
  if (int rc = mdb_dbi_open(txn.get(), nullptr, 0, &main_dbi); rc != 0) {
    return lmdb_status(rc, "mdb_dbi_open");
  }
  MDB_stat main_stat{};
  mdb_stat(txn.get(), main_dbi, &main_stat);
  bool fresh = main_stat.ms_entries == 0;
  const Status foreign = Status::corruption(fmt::format("{}: not a broker data directory", dir_));

  bool older = false;  // written by an older format version: the meta record says ours now
  if (!fresh) {
    int rc = mdb_dbi_open(txn.get(), "meta", 0, &dbi_.meta);
    if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) return foreign;
    if (rc != 0) return lmdb_status(rc, "mdb_dbi_open meta");
    MDB_val k = to_val(kMetaKey), v{};
    rc = mdb_get(txn.get(), dbi_.meta, &k, &v);
    if (rc == MDB_NOTFOUND) return Status::corruption(fmt::format("{}: meta record missing", dir_));
    if (rc != 0) return lmdb_status(rc, "read meta");
    auto meta = decode_meta(from_val(v));
    if (!meta) return Status::corruption(fmt::format("{}: {}", dir_, meta.status().message()));
    if (meta.value().magic != kStoreMagic) return foreign;
    if (meta.value().format_version > kFormatVersion || meta.value().format_version == 0) {
      return Status::corruption(
          fmt::format("{}: unsupported format version {}", dir_, meta.value().format_version));
    }
    older = meta.value().format_version < kFormatVersion;
  }
  const std::pair<const char*, MDB_dbi*> dbs[] = {
      {"meta", &dbi_.meta},         {"messages", &dbi_.messages}, {"sessions", &dbi_.sessions},
      {"deliveries", &dbi_.deliveries}, {"retained", &dbi_.retained}, {"log", &dbi_.log},
      {"offsets", &dbi_.offsets},   {"chunks", &dbi_.chunks}};
  for (const auto& [name, dbi] : dbs) {
    int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi);
    if (rc == MDB_INCOMPATIBLE) return foreign;
    if (rc != 0) return lmdb_status(rc, fmt::format("mdb_dbi_open {}", name));
  }
  MDB_stat env_stat{};
  mdb_env_stat(env_.get(), &env_stat);
  values_.open(dbi_.chunks, env_stat.ms_psize, map_size_);
  // An older store keeps its records (their decoders stay), but records of this version will
  // join them, so the meta record is raised: an older broker then refuses the directory
  // instead of meeting records it cannot read.
  if (fresh || older) {
    if (Status st = put(txn.get(), dbi_.meta, kMetaKey,
                        encode_meta(MetaRecord{std::string(kStoreMagic), kFormatVersion}));
        !st) {
      return st;
    }
  }
  if (fresh) {
    if (Status st = put(txn.get(), dbi_.meta, kLogNextKey, encode_counter(1)); !st) return st;
  } else if (Status st = read_log_next(txn.get(), next_sequence_); !st) {
    return st;
  }
  return lmdb_status(txn.commit(), "commit", map_size_);
}

LmdbStore::~LmdbStore() {
  if (!writer_.joinable()) return;  // open failed before the writer started
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  writer_.join();  // the writer drains the queue first
}

// --- write path ---

void LmdbStore::submit(WriteBatch&& batch, std::function<void(const Status&)> done) {
  Entry e;
  e.bytes = estimate_bytes(batch);
  e.batch = std::move(batch);
  e.done = std::move(done);
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(e));
    ++submitted_;
  }
  work_cv_.notify_one();
}

void LmdbStore::flush() {
  if (std::this_thread::get_id() == writer_id_) return;
  std::unique_lock lock(mu_);
  std::uint64_t target = submitted_;
  flush_cv_.wait(lock, [&] { return completed_ >= target; });
}

void LmdbStore::writer_loop() {
  std::vector<Entry> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || (!held_ && !queue_.empty()); });
      if (queue_.empty()) return;  // stopping and drained
      std::size_t bytes = 0;
      while (!queue_.empty() && group.size() < kMaxGroupBatches) {
        if (!group.empty() && bytes + queue_.front().bytes > kMaxGroupBytes) break;
        bytes += queue_.front().bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_group(group);
    {
      std::lock_guard lock(mu_);
      completed_ += group.size();
    }
    flush_cv_.notify_all();
    group.clear();
  }
}

void LmdbStore::run_group(std::vector<Entry>& group) {
  auto note_commit = [this](std::uint64_t size) {
    stat_groups_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t prev = stat_max_group_.load(std::memory_order_relaxed);
    while (prev < size && !stat_max_group_.compare_exchange_weak(prev, size)) {
    }
    full_logged_ = false;
  };
  Status st = apply_group(group, 0, group.size());
  if (st) {
    note_commit(group.size());
    for (auto& e : group) complete(e, st);
    return;
  }
  stat_failed_groups_.fetch_add(1, std::memory_order_relaxed);
  if (group.size() == 1) {
    complete(group[0], st);
    return;
  }
  // Retry each batch alone so that the one that cannot fit fails only itself.
  for (std::size_t i = 0; i < group.size(); ++i) {
    Status one = apply_group(group, i, i + 1);
    if (one) {
      note_commit(1);
    } else {
      stat_failed_groups_.fetch_add(1, std::memory_order_relaxed);
    }
    complete(group[i], one);
  }
}

void LmdbStore::complete(Entry& entry, const Status& status) {
  stat_batches_.fetch_add(1, std::memory_order_relaxed);
  if (!status) {
    stat_failed_batches_.fetch_add(1, std::memory_order_relaxed);
    if (status.code() == Status::Code::Unavailable && !full_logged_) {
      full_logged_ = true;
      log::warn("store {}: {}; batches fail until space is freed", dir_, status.message());
    } else if (status.code() != Status::Code::Unavailable) {
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now().time_since_epoch());
      if (!error_log_.allow(static_cast<std::uint64_t>(now.count()))) {
        ++errors_unlogged_;
      } else {
        log::error("store {}: write failed: {}{}", dir_, status.to_string(),
                   errors_unlogged_ == 0 ? std::string()
                                         : fmt::format(" ({} more since the last report)", errors_unlogged_));
        errors_unlogged_ = 0;
      }
    }
  }
  if (entry.done) entry.done(status);
}

Status LmdbStore::apply_group(std::vector<Entry>& group, std::size_t begin, std::size_t end) {
  Txn txn;
  if (int rc = txn.begin(env_.get(), 0); rc != 0) return lmdb_status(rc, "mdb_txn_begin", map_size_);
  WriteContext ctx{txn.get(), next_sequence_};
  for (std::size_t i = begin; i < end; ++i) {
    Entry& e = group[i];
    Status st = e.task ? e.task(ctx) : apply_batch(ctx, e.batch);
    if (!st) return st;  // txn aborts on scope exit
  }
  if (ctx.next_sequence != next_sequence_) {
    if (Status st = put(txn.get(), dbi_.meta, kLogNextKey, encode_counter(ctx.next_sequence)); !st) {
      return st;
    }
  }
  if (int rc = txn.commit(); rc != 0) return lmdb_status(rc, "mdb_txn_commit", map_size_);
  next_sequence_ = ctx.next_sequence;
  return Status::ok();
}

Status LmdbStore::apply_batch(WriteContext& ctx, const WriteBatch& batch) {
  for (const auto& op : batch.ops()) {
    if (Status st = apply_op(ctx, op); !st) return st;
  }
  return Status::ok();
}

Status LmdbStore::apply_op(WriteContext& ctx, const WriteBatch::Op& op) {
  MDB_txn* txn = ctx.txn;
  // Deliveries of a client are removed by key range; keys first, then deletes, so no cursor
  // has to survive a delete under it.
  auto delete_deliveries = [&](std::string_view client_id) -> Status {
    std::string prefix = delivery_prefix(client_id);
    std::vector<std::string> keys;
    Cursor c;
    if (int rc = c.open(txn, dbi_.deliveries); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
    MDB_val k = to_val(prefix), v{};
    for (int rc = c.get(k, v, MDB_SET_RANGE); rc == 0; rc = c.get(k, v, MDB_NEXT)) {
      std::string_view key = from_val(k);
      if (key.substr(0, prefix.size()) != prefix) break;
      keys.emplace_back(key);
    }
    for (const auto& key : keys) {
      if (Status st = del(txn, dbi_.deliveries, key); !st) return st;
    }
    return Status::ok();
  };

  return std::visit(
      [&](const auto& o) -> Status {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, WriteBatch::PutSession>) {
          if (Status st = check_key(delivery_prefix(o.session.client_id), "client id"); !st) return st;
          return values_.put(txn, dbi_.sessions, o.session.client_id, encode_session(o.session));
        } else if constexpr (std::is_same_v<T, WriteBatch::DeleteSession>) {
          if (Status st = check_key(delivery_prefix(o.client_id), "client id"); !st) return st;
          if (Status st = values_.del(txn, dbi_.sessions, o.client_id); !st) return st;
          return delete_deliveries(o.client_id);
        } else if constexpr (std::is_same_v<T, WriteBatch::PutMessage>) {
          return values_.put(txn, dbi_.messages, u64_key(o.message.id), encode_message(o.message));
        } else if constexpr (std::is_same_v<T, WriteBatch::DeleteMessage>) {
          return values_.del(txn, dbi_.messages, u64_key(o.id));
        } else if constexpr (std::is_same_v<T, WriteBatch::PutDelivery>) {
          std::string key = delivery_key(o.delivery.client_id, o.delivery.message_id, o.delivery.shared_tag);
          if (Status st = check_key(key, "client id"); !st) return st;
          return put(txn, dbi_.deliveries, key, encode_delivery(o.delivery));
        } else if constexpr (std::is_same_v<T, WriteBatch::DeleteDelivery>) {
          std::string key = delivery_key(o.client_id, o.message_id, o.shared_tag);
          if (Status st = check_key(key, "client id"); !st) return st;
          return del(txn, dbi_.deliveries, key);
        } else if constexpr (std::is_same_v<T, WriteBatch::PutRetained>) {
          const std::string key = retained_key(o.message.message.topic);
          if (Status st = check_key(key, "retained topic"); !st) return st;
          return values_.put(txn, dbi_.retained, key, encode_message(o.message));
        } else if constexpr (std::is_same_v<T, WriteBatch::DeleteRetained>) {
          const std::string key = retained_key(o.topic);
          if (Status st = check_key(key, "retained topic"); !st) return st;
          if (o.only_id != 0) {
            MDB_val k = to_val(key), v{};
            const int rc = mdb_get(txn, dbi_.retained, &k, &v);
            if (rc == MDB_NOTFOUND) return Status::ok();
            if (rc != 0) return lmdb_status(rc, "read retained");
            std::string scratch;
            auto stored = values_.read(txn, from_val(v), scratch);
            if (!stored) return Status::ok();
            auto held = decode_message(stored.value());
            if (!held || held.value().id != o.only_id) return Status::ok();  // replaced since
          }
          return values_.del(txn, dbi_.retained, key);
        } else if constexpr (std::is_same_v<T, WriteBatch::MarkAlive>) {
          return put(txn, dbi_.meta, kAliveKey, encode_counter(o.time_ms));
        } else {
          static_assert(std::is_same_v<T, WriteBatch::AppendLog>);
          LogRecord rec{ctx.next_sequence, o.message};
          if (Status st = values_.put(txn, dbi_.log, u64_key(rec.sequence), encode_log_record(rec)); !st) {
            return st;
          }
          ++ctx.next_sequence;
          return Status::ok();
        }
      },
      op);
}

Status LmdbStore::put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) {
  return lmdb::put_value(txn, dbi, key, value, map_size_);
}

Status LmdbStore::del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  return lmdb::del_value(txn, dbi, key, map_size_);
}

Status LmdbStore::run_task(Task task) {
  Entry e;
  e.task = std::move(task);
  if (std::this_thread::get_id() == writer_id_) {
    // Called from a completion: no transaction is open, so the writer can run it now.
    std::vector<Entry> one;
    one.push_back(std::move(e));
    Status st = apply_group(one, 0, 1);
    if (st) full_logged_ = false;
    stat_batches_.fetch_add(1, std::memory_order_relaxed);
    stat_groups_.fetch_add(st ? 1 : 0, std::memory_order_relaxed);
    return st;
  }
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  e.done = [&](const Status& st) {
    std::lock_guard lock(m);
    result = st;
    finished = true;
    cv.notify_one();  // under the lock: the waiter cannot leave (and free m, cv) before this returns
  };
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(e));
    ++submitted_;
  }
  work_cv_.notify_one();
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return finished; });
  return result;
}

Status LmdbStore::commit_consumer_offset(std::string_view consumer, std::uint64_t next) {
  if (Status st = check_key(consumer, "consumer name"); !st) return st;
  std::string key(consumer);
  return run_task([this, key, next](WriteContext& ctx) {
    return put(ctx.txn, dbi_.offsets, key, encode_counter(next));
  });
}

Result<std::uint64_t> LmdbStore::trim_log(std::uint64_t min_arrival_ms, std::uint64_t max_bytes) {
  std::uint64_t dropped = 0;
  Status st = run_task([&](WriteContext& ctx) -> Status {
    dropped = 0;  // a retried task starts over
    struct Item {
      std::uint64_t seq;
      std::uint64_t bytes;
    };
    std::vector<Item> kept;
    std::vector<std::uint64_t> drop;
    Cursor c;
    if (int rc = c.open(ctx.txn, dbi_.log); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
    MDB_val k{}, v{};
    std::uint64_t kept_bytes = 0;
    std::string scratch;
    int rc = c.get(k, v, MDB_FIRST);
    for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
      auto rec = read_log_record(ctx.txn, k, v, scratch);
      if (!rec) return rec.status();
      const StoredMessage& m = rec.value().message;
      if (m.arrival_ms < min_arrival_ms) {
        drop.push_back(rec.value().sequence);
      } else {
        kept.push_back({rec.value().sequence, payload_bytes(m)});
        kept_bytes += payload_bytes(m);
      }
    }
    if (rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_cursor_get");
    for (std::size_t i = 0; i < kept.size() && kept_bytes > max_bytes; ++i) {
      kept_bytes -= kept[i].bytes;
      drop.push_back(kept[i].seq);
    }
    for (std::uint64_t seq : drop) {
      if (Status s = values_.del(ctx.txn, dbi_.log, u64_key(seq)); !s) return s;
    }
    dropped = drop.size();
    return Status::ok();
  });
  if (!st) return st;
  return dropped;
}

// --- read path ---

Result<Txn> LmdbStore::begin_read() const {
  Txn txn;
  if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return lmdb_status(rc, "mdb_txn_begin");
  return Result<Txn>(std::move(txn));
}

Status LmdbStore::corrupt_record(std::string_view db, std::string_view key, bool numeric,
                                 const Status& why) const {
  return Status::corruption(
      fmt::format("{}: {} record {}: {}", dir_, db, describe_key(key, numeric), why.message()));
}

Result<LogRecord> LmdbStore::read_log_record(MDB_txn* txn, const MDB_val& k, const MDB_val& v,
                                             std::string& scratch) const {
  auto stored = values_.read(txn, from_val(v), scratch);
  if (!stored) return corrupt_record("log", from_val(k), true, stored.status());
  auto rec = decode_log_record(stored.value());
  if (!rec) return corrupt_record("log", from_val(k), true, rec.status());
  return rec;
}

Status LmdbStore::read_log_next(MDB_txn* txn, std::uint64_t& next) const {
  MDB_val k = to_val(kLogNextKey), v{};
  int rc = mdb_get(txn, dbi_.meta, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::corruption(fmt::format("{}: log_next record missing", dir_));
  if (rc != 0) return lmdb_status(rc, "read log_next");
  auto value = decode_counter(from_val(v));
  if (!value) return corrupt_record("meta", kLogNextKey, false, value.status());
  next = value.value();
  return Status::ok();
}

Status LmdbStore::load(StoreVisitor& visitor) {
  auto txn = begin_read();
  if (!txn) return txn.status();
  std::error_code ec;
  const std::uint64_t file_size = std::filesystem::file_size(std::filesystem::path(dir_) / "data.mdb", ec);
  if (ec) return Status::io_error(fmt::format("{}: data.mdb: {}", dir_, ec.message()));
  const ChunkedValues::InFile in_file = [this, file_size](std::string_view val) {
    if (val.empty() || !map_base_) return true;  // no base found: nothing to check against
    if (val.data() < map_base_) return false;
    const auto offset = static_cast<std::uint64_t>(val.data() - map_base_);
    return offset <= file_size && val.size() <= file_size - offset;
  };
  // Visits every record of one database in key order.
  auto scan = [&](MDB_dbi dbi, std::string_view name, bool numeric, auto&& visit) -> Status {
    Cursor c;
    if (int rc = c.open(txn.value().get(), dbi); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
    MDB_val k{}, v{};
    std::string scratch;
    int rc = c.get(k, v, MDB_FIRST);
    for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
      if (!in_file(from_val(k))) return Status::corruption(fmt::format("{}: {}: a key lies past the data file's end", dir_, name));
      if (!in_file(from_val(v))) return corrupt_record(name, from_val(k), numeric, Status::corruption("lies past the data file's end"));
      auto stored = values_.read(txn.value().get(), from_val(v), scratch, in_file);
      if (!stored) return corrupt_record(name, from_val(k), numeric, stored.status());
      if (Status st = visit(from_val(k), stored.value()); !st) {
        return corrupt_record(name, from_val(k), numeric, st);
      }
    }
    return rc == MDB_NOTFOUND ? Status::ok() : lmdb_status(rc, "mdb_cursor_get");
  };
  const Status wrong_key = Status::corruption("key does not match the record");

  MDB_val alive_key = to_val(kAliveKey), alive{};
  if (int rc = mdb_get(txn.value().get(), dbi_.meta, &alive_key, &alive); rc == 0) {
    if (!in_file(from_val(alive))) return corrupt_record("meta", kAliveKey, false, Status::corruption("lies past the data file's end"));
    auto time = decode_counter(from_val(alive));
    if (!time) return corrupt_record("meta", kAliveKey, false, time.status());
    visitor.on_alive(time.value());
  } else if (rc != MDB_NOTFOUND) {
    return lmdb_status(rc, "read alive");
  }

  Status st = scan(dbi_.messages, "messages", true, [&](std::string_view key, std::string_view val) {
    auto m = decode_message(val);
    if (!m) return m.status();
    if (key != u64_key(m.value().id)) return wrong_key;
    visitor.on_message(std::move(m).value());
    return Status::ok();
  });
  if (!st) return st;
  st = scan(dbi_.sessions, "sessions", false, [&](std::string_view key, std::string_view val) {
    auto s = decode_session(val);
    if (!s) return s.status();
    if (key != s.value().client_id) return wrong_key;
    visitor.on_session(std::move(s).value());
    return Status::ok();
  });
  if (!st) return st;
  st = scan(dbi_.deliveries, "deliveries", false, [&](std::string_view key, std::string_view val) {
    auto d = decode_delivery(val);
    if (!d) return d.status();
    if (key != delivery_key(d.value().client_id, d.value().message_id, d.value().shared_tag)) return wrong_key;
    visitor.on_delivery(std::move(d).value());
    return Status::ok();
  });
  if (!st) return st;
  return scan(dbi_.retained, "retained", false, [&](std::string_view key, std::string_view val) {
    auto m = decode_message(val);
    if (!m) return m.status();
    if (key != retained_key(m.value().message.topic)) return wrong_key;
    visitor.on_retained(std::move(m).value());
    return Status::ok();
  });
}

Result<std::vector<LogRecord>> LmdbStore::read_log(std::uint64_t from, std::size_t max) {
  std::vector<LogRecord> out;
  if (max == 0) return out;
  auto txn = begin_read();
  if (!txn) return txn.status();
  Cursor c;
  if (int rc = c.open(txn.value().get(), dbi_.log); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
  std::string start = u64_key(from);
  MDB_val k = to_val(start), v{};
  std::string scratch;
  int rc = c.get(k, v, MDB_SET_RANGE);
  for (; rc == 0 && out.size() < max; rc = c.get(k, v, MDB_NEXT)) {
    auto rec = read_log_record(txn.value().get(), k, v, scratch);
    if (!rec) return rec.status();
    out.push_back(std::move(rec).value());
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_cursor_get");
  return out;
}

Result<std::uint64_t> LmdbStore::find_log_time(std::uint64_t time_ms) {
  auto txn = begin_read();
  if (!txn) return txn.status();
  Cursor c;
  if (int rc = c.open(txn.value().get(), dbi_.log); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
  // Arrival times follow the wall clock, which may step back, so scan rather than bisect.
  MDB_val k{}, v{};
  std::string scratch;
  int rc = c.get(k, v, MDB_FIRST);
  for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
    auto rec = read_log_record(txn.value().get(), k, v, scratch);
    if (!rec) return rec.status();
    if (rec.value().message.arrival_ms >= time_ms) return rec.value().sequence;
  }
  if (rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_cursor_get");
  std::uint64_t next = 0;
  if (Status st = read_log_next(txn.value().get(), next); !st) return st;
  return next;
}

Result<std::uint64_t> LmdbStore::consumer_offset(std::string_view consumer) {
  if (Status st = check_key(consumer, "consumer name"); !st) return st;
  auto txn = begin_read();
  if (!txn) return txn.status();
  MDB_val k = to_val(consumer), v{};
  int rc = mdb_get(txn.value().get(), dbi_.offsets, &k, &v);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return lmdb_status(rc, "mdb_get");
  auto value = decode_counter(from_val(v));
  if (!value) return corrupt_record("offsets", consumer, false, value.status());
  return value;
}

// --- accessors ---

LmdbStoreStats LmdbStore::stats() const {
  LmdbStoreStats s;
  s.batches = stat_batches_.load(std::memory_order_relaxed);
  s.groups = stat_groups_.load(std::memory_order_relaxed);
  s.max_group_size = stat_max_group_.load(std::memory_order_relaxed);
  s.failed_groups = stat_failed_groups_.load(std::memory_order_relaxed);
  s.failed_batches = stat_failed_batches_.load(std::memory_order_relaxed);
  return s;
}

void LmdbStore::hold_writer(bool hold) {
  {
    std::lock_guard lock(mu_);
    held_ = hold;
  }
  work_cv_.notify_all();
}

std::string strip_trailing_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

std::optional<LmdbStoreStats> lmdb_store_stats(Store& store) {
  auto* lmdb = dynamic_cast<LmdbStore*>(&store);
  if (lmdb == nullptr) return std::nullopt;
  return lmdb->stats();
}

void lmdb_store_hold_writer_for_test(Store& store, bool hold) {
  if (auto* lmdb = dynamic_cast<LmdbStore*>(&store)) lmdb->hold_writer(hold);
}

}  // namespace broker::storage

namespace broker {

namespace {

// Reads every record and keeps none: whether load() will succeed. Used by one thread, once.
class ReadCheck final : public StoreVisitor {
 public:
  void on_message(StoredMessage&&) override {}
  void on_session(StoredSession&&) override {}
  void on_delivery(StoredDelivery&&) override {}
  void on_retained(StoredMessage&&) override {}
};

}  // namespace

Result<StorePtr> open_lmdb_store(const LmdbStoreOptions& options) {
  auto opened = storage::LmdbStore::open(options);
  Status why = opened.status();
  if (opened) {
    if (!options.move_aside_unreadable) return StorePtr(std::move(opened).value());
    // A store that opens may still hold damaged records: read them all now, while moving it
    // aside is still possible (recovery is the next step, and would fail).
    ReadCheck check;
    why = opened.value()->load(check);
    if (why.code() != Status::Code::Corruption) {
      if (!why) return why;
      return StorePtr(std::move(opened).value());
    }
    opened.value().reset();  // closes it, and releases its lock, before the move
  }
  if (!options.move_aside_unreadable || why.code() != Status::Code::Corruption) return why;

  std::string dir = storage::strip_trailing_slashes(options.dir);
  std::string target = fmt::format("{}.broken-{}", dir, static_cast<long long>(std::time(nullptr)));
  std::error_code ec;
  for (int n = 1; std::filesystem::exists(target, ec); ++n) {
    target = fmt::format("{}.broken-{}-{}", dir, static_cast<long long>(std::time(nullptr)), n);
  }
  std::filesystem::rename(dir, target, ec);
  if (ec) {
    return Status::io_error(
        fmt::format("{} (and moving it to {} failed: {})", why.message(), target, ec.message()));
  }
  log::warn("store: {}; moved it to {} and started an empty store", why.message(), target);
  auto fresh = storage::LmdbStore::open(options);
  if (!fresh) return fresh.status();
  return StorePtr(std::move(fresh).value());
}

}  // namespace broker
