#pragma once
// Internal accessors of the LMDB store (broker::open_lmdb_store in broker/store.hpp) for
// benchmarks, ops counters and tests. Not installed.
//
// Layout: one LMDB environment in options.dir with named databases: "meta" (magic and format
// version, next log sequence, alive time), "messages" (u64 id), "sessions" (client id), "deliveries"
// (client id, 0x00, u64 message id), "retained" (topic), "log" (u64 sequence), "offsets"
// (consumer name), "chunks" (u64 id, u32 index); values are record_codec.hpp records. A
// message, session, retained or log record larger than four pages is written in chunks
// (chunked_values.hpp), so that freed space can be reused for it.
//
// Write path: submit() queues; one writer thread takes every waiting batch (up to
// kMaxGroupBatches / kMaxGroupBytes), applies them in one write transaction, commits, then
// runs the completions in order (group commit). If the group's transaction fails, each of its
// batches is retried alone, so one oversized batch fails only itself.
//
// Limits beyond the Store contract: LMDB keys hold at most 511 bytes, so a batch naming a
// client id longer than 502 bytes or a retained topic longer than 511 bytes completes with
// InvalidArgument (and nothing of that batch is written).
//
// Thread safety: as broker::Store. The accessors below are safe from any thread.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "broker/store.hpp"

namespace broker::storage {

inline constexpr std::size_t kMaxGroupBatches = 1000;
inline constexpr std::size_t kMaxGroupBytes = 64u << 20;

struct LmdbStoreStats {
  std::uint64_t batches = 0;         // batches completed (OK or failed), commit/trim calls included
  std::uint64_t groups = 0;          // write transactions that committed
  std::uint64_t max_group_size = 0;  // most batches committed in one transaction
  std::uint64_t failed_groups = 0;   // transactions aborted (map full, I/O error, bad key)
  std::uint64_t failed_batches = 0;  // batches completed with an error
};

// Counters of an LMDB store; nullopt when `store` is another kind of Store.
std::optional<LmdbStoreStats> lmdb_store_stats(Store& store);

// While held, the writer leaves queued batches alone, so a test can build a group of a known
// size. Releasing wakes the writer. No effect on other stores.
void lmdb_store_hold_writer_for_test(Store& store, bool hold);

}  // namespace broker::storage
