#pragma once
// Record values of the LMDB store, large ones written as chunks of a few pages each.
//
// Why: LMDB keeps a value larger than half a page on consecutive overflow pages, and reuses
// freed pages for it only where enough of them lie side by side. Files of megabytes queued
// and removed among small records left the free runs too short for the next file, so the data
// file kept growing far past its live data (a simulation of that churn, about 11 MB live:
// 132 MB after 3,000 files and still growing). Chunks of four pages fit nearly any free run;
// the same churn levelled off at 22 MB (two pages: 19.5, sixteen: 40).
//
// A chunked record's own key holds a ChunkedRef (record_codec.hpp); its chunks lie in their
// own database under chunk_key(id, index), written and removed in the same transaction as
// the reference. A new id is one past the highest in use.
//
// Thread safety: none of its own; put() and del() run in the store's write transaction,
// read() in any transaction of the calling thread.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <lmdb.h>

#include "broker/status.hpp"

namespace broker::storage::lmdb {

class ChunkedValues {
 public:
  // Whether a value read from the map lies inside the data file (a damaged page can point
  // past its end, and reading there is a SIGBUS).
  using InFile = std::function<bool(std::string_view)>;

  // `chunks` is the database of chunks; `page_size` the environment's; `map_size` for errors.
  void open(MDB_dbi chunks, std::size_t page_size, std::uint64_t map_size);

  // Stores `value` under `key`, in chunks when it is larger than chunk_bytes(), and removes
  // the chunks of the value it replaces.
  Status put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) const;
  // Removes `key` and its chunks; a missing key is not an error.
  Status del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) const;
  // The record a stored value stands for: the value itself, or its chunks joined in
  // `scratch`. Corruption when a chunk is missing, misplaced or of the wrong size.
  Result<std::string_view> read(MDB_txn* txn, std::string_view stored, std::string& scratch,
                                const InFile& in_file = {}) const;

  std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }

 private:
  Status drop_chunks(MDB_txn* txn, MDB_dbi dbi, std::string_view key) const;
  Result<std::uint64_t> next_id(MDB_txn* txn) const;

  MDB_dbi chunks_ = 0;
  std::size_t chunk_bytes_ = 0;
  std::uint64_t map_size_ = 0;
};

}  // namespace broker::storage::lmdb
