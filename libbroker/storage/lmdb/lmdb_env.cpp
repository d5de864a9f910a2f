#include "storage/lmdb/lmdb_env.hpp"

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

Status Env::create() {
  close();
  return lmdb_status(mdb_env_create(&env_), "mdb_env_create");
}

void Env::close() noexcept {
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

}  // namespace broker::storage::lmdb
