#pragma once
// Thin RAII over the LMDB C API: one owner per MDB_env, MDB_txn and MDB_cursor, and LMDB
// return codes turned into Status. MDB_dbi handles need no owner: they live as long as the
// environment once the transaction that opened them commits.
//
// Thread safety: an Env is shared by all threads (LMDB allows it); a Txn or Cursor belongs to
// the thread that began it (read transactions can move because the env uses MDB_NOTLS, but
// we never do).
#include <cstdint>
#include <string>
#include <string_view>

#include <lmdb.h>

#include "broker/status.hpp"

namespace broker::storage::lmdb {

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB never writes through it
}
inline std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// `what` names the operation; MDB_MAP_FULL becomes Unavailable, everything else IoError.
Status lmdb_status(int rc, std::string_view what, std::uint64_t map_size = 0);

// mdb_put and mdb_del as Status: a key LMDB cannot hold is InvalidArgument, and deleting a
// missing key is not an error.
Status put_value(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
                 std::uint64_t map_size);
Status del_value(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::uint64_t map_size);

// Whether every page from `first` to `last` (inclusive) is on LMDB's free list, as `txn` sees
// it. A damaged free list reads as false.
bool pages_free(MDB_txn* txn, std::uint64_t first, std::uint64_t last);

class Env {
 public:
  Env() = default;
  ~Env() { close(); }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  // Creates the handle only; configure it, then open().
  Status create();
  MDB_env* get() const noexcept { return env_; }
  void close() noexcept;

 private:
  MDB_env* env_ = nullptr;
};

class Txn {
 public:
  Txn() = default;
  ~Txn() { abort(); }
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;

  // Returns the raw LMDB code so callers can tell MDB_MAP_FULL apart.
  int begin(MDB_env* env, unsigned flags) noexcept {
    abort();
    return mdb_txn_begin(env, nullptr, flags, &txn_);
  }
  // After commit the handle is gone whatever the outcome (LMDB frees it on failure too).
  int commit() noexcept {
    MDB_txn* t = txn_;
    txn_ = nullptr;
    return mdb_txn_commit(t);
  }
  void abort() noexcept {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  MDB_txn* get() const noexcept { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  int open(MDB_txn* txn, MDB_dbi dbi) noexcept { return mdb_cursor_open(txn, dbi, &cursor_); }
  // MDB_NOTFOUND at the end; `key` and `value` point into the map until the txn ends.
  int get(MDB_val& key, MDB_val& value, MDB_cursor_op op) noexcept {
    return mdb_cursor_get(cursor_, &key, &value, op);
  }
  int del() noexcept { return mdb_cursor_del(cursor_, 0); }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace broker::storage::lmdb
