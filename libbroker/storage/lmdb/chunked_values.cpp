#include "storage/lmdb/chunked_values.hpp"

#include <fmt/format.h>

#include "storage/lmdb/lmdb_env.hpp"
#include "storage/record_codec.hpp"

namespace broker::storage::lmdb {
namespace {

// A chunk fills this many pages: LMDB puts a page header before an overflow value.
constexpr std::size_t kChunkPages = 4;
constexpr std::size_t kOverflowHeaderBytes = 16;

}  // namespace

void ChunkedValues::open(MDB_dbi chunks, std::size_t page_size, std::uint64_t map_size) {
  chunks_ = chunks;
  chunk_bytes_ = kChunkPages * page_size - kOverflowHeaderBytes;
  map_size_ = map_size;
}

Status ChunkedValues::put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) const {
  if (Status st = drop_chunks(txn, dbi, key); !st) return st;
  if (value.size() <= chunk_bytes_) return put_value(txn, dbi, key, value, map_size_);
  const std::uint64_t count = (value.size() + chunk_bytes_ - 1) / chunk_bytes_;
  if (count > UINT32_MAX) return Status::invalid_argument(fmt::format("a record of {} bytes cannot be stored", value.size()));
  auto id = next_id(txn);
  if (!id) return id.status();
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::string_view chunk = value.substr(i * chunk_bytes_, chunk_bytes_);
    if (Status st = put_value(txn, chunks_, chunk_key(id.value(), i), chunk, map_size_); !st) return st;
  }
  const ChunkedRef ref{id.value(), value.size(), static_cast<std::uint32_t>(count)};
  return put_value(txn, dbi, key, encode_chunked_ref(ref), map_size_);
}

Status ChunkedValues::del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) const {
  if (Status st = drop_chunks(txn, dbi, key); !st) return st;
  return del_value(txn, dbi, key, map_size_);
}

Status ChunkedValues::drop_chunks(MDB_txn* txn, MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v{};
  const int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::ok();
  if (rc != 0) return lmdb_status(rc, "mdb_get", map_size_);
  if (!is_chunked_ref(from_val(v))) return Status::ok();
  // A damaged reference leaves its chunks behind as dead space: failing instead would fail
  // every later write of this key, and the record is going away either way.
  auto ref = decode_chunked_ref(from_val(v));
  if (!ref) return Status::ok();
  for (std::uint32_t i = 0; i < ref.value().count; ++i) {
    if (Status st = del_value(txn, chunks_, chunk_key(ref.value().id, i), map_size_); !st) return st;
  }
  return Status::ok();
}

Result<std::uint64_t> ChunkedValues::next_id(MDB_txn* txn) const {
  Cursor c;
  if (int rc = c.open(txn, chunks_); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
  MDB_val k{}, v{};
  const int rc = c.get(k, v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return std::uint64_t{1};
  if (rc != 0) return lmdb_status(rc, "mdb_cursor_get", map_size_);
  auto last = parse_u64_key(from_val(k).substr(0, 8));
  if (!last || k.mv_size != 12 || *last == UINT64_MAX) {
    return Status::corruption(fmt::format("chunks: bad key 0x{}", to_hex(from_val(k))));
  }
  return *last + 1;
}

Result<std::string_view> ChunkedValues::read(MDB_txn* txn, std::string_view stored, std::string& scratch,
                                             const InFile& in_file) const {
  if (!is_chunked_ref(stored)) return stored;
  auto ref = decode_chunked_ref(stored);
  if (!ref) return ref.status();
  const auto [id, bytes, count] = ref.value();
  // Written as full chunks and a last partial one; anything else is not ours.
  if (bytes > std::uint64_t{count} * chunk_bytes_ || bytes <= std::uint64_t{count - 1} * chunk_bytes_) {
    return Status::corruption(fmt::format("chunk reference: {} bytes in {} chunks", bytes, count));
  }
  Cursor c;
  if (int rc = c.open(txn, chunks_); rc != 0) return lmdb_status(rc, "mdb_cursor_open");
  scratch.clear();
  scratch.reserve(bytes);
  const std::string first = chunk_key(id, 0);
  MDB_val k = to_val(first), v{};
  int rc = c.get(k, v, MDB_SET_KEY);
  for (std::uint32_t i = 0; i < count; ++i, rc = c.get(k, v, MDB_NEXT)) {
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_status(rc, "mdb_cursor_get", map_size_);
    if (rc == MDB_NOTFOUND || from_val(k) != chunk_key(id, i)) {
      return Status::corruption(fmt::format("chunk {} of {} of record {} missing", i + 1, count, id));
    }
    if (in_file && (!in_file(from_val(k)) || !in_file(from_val(v)))) {
      return Status::corruption(fmt::format("chunk {} of record {} lies past the data file's end", i + 1, id));
    }
    if (scratch.size() + v.mv_size > bytes) break;
    scratch.append(from_val(v));
  }
  if (scratch.size() != bytes) {
    return Status::corruption(fmt::format("chunks of record {} hold other than {} bytes", id, bytes));
  }
  return std::string_view(scratch);
}

}  // namespace broker::storage::lmdb
