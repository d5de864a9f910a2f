#include "storage/lmdb/lmdb_env.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace broker::storage::lmdb {

Status lmdb_status(int rc, std::string_view what, std::uint64_t map_size) {
  if (rc == MDB_SUCCESS) return Status::ok();
  if (rc == MDB_MAP_FULL) {
    return Status::unavailable(fmt::format("store full: map size {} bytes reached", map_size));
  }
  if (rc == MDB_TXN_FULL) {
    // Too many dirty pages for one transaction: a smaller write may still succeed.
    return Status::unavailable(fmt::format("store full: {}: transaction too large", what));
  }
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    // Damaged pages: the data, not the system, is at fault (move_aside_unreadable applies).
    return Status::corruption(fmt::format("{}: {}", what, mdb_strerror(rc)));
  }
  return Status::io_error(fmt::format("{}: {}", what, mdb_strerror(rc)));
}

Status put_value(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
                 std::uint64_t map_size) {
  MDB_val k = to_val(key), v = to_val(value);
  const int rc = mdb_put(txn, dbi, &k, &v, 0);
  if (rc == MDB_BAD_VALSIZE) {
    return Status::invalid_argument(fmt::format("key of {} bytes cannot be stored", key.size()));
  }
  return lmdb_status(rc, "mdb_put", map_size);
}

Status del_value(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::uint64_t map_size) {
  MDB_val k = to_val(key);
  const int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::ok();
  return lmdb_status(rc, "mdb_del", map_size);
}

bool pages_free(MDB_txn* txn, std::uint64_t first, std::uint64_t last) {
  if (first > last) return true;
  std::vector<bool> seen(last - first + 1, false);
  MDB_cursor* cursor = nullptr;
  if (mdb_cursor_open(txn, 0, &cursor) != 0) return false;  // database 0: LMDB's free pages
  MDB_val key{}, value{};
  int rc = 0;
  while ((rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) == 0) {
    // Each record is a list of page numbers (LMDB's MDB_ID, a size_t): its length, then the
    // pages. Copied out: the map gives no alignment guarantee to a reader.
    const std::size_t fits = value.mv_size / sizeof(std::size_t);
    auto id_at = [&](std::size_t i) {
      std::size_t id = 0;
      std::memcpy(&id, static_cast<const char*>(value.mv_data) + i * sizeof(id), sizeof(id));
      return id;
    };
    const std::size_t count = fits == 0 ? 0 : std::min(id_at(0), fits - 1);
    for (std::size_t i = 1; i <= count; ++i) {
      const std::uint64_t page = id_at(i);
      if (page >= first && page <= last) seen[page - first] = true;
    }
  }
  mdb_cursor_close(cursor);
  return rc == MDB_NOTFOUND && std::find(seen.begin(), seen.end(), false) == seen.end();
}

Status Env::create() {
  close();
  return lmdb_status(mdb_env_create(&env_), "mdb_env_create");
}

void Env::close() noexcept {
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

}  // namespace broker::storage::lmdb
