#pragma once
// DirLock: one process at a time on a data directory. Two brokers on one store would each
// deliver the same queued messages and recover (delete) records the other still uses, so the
// second refuses to start. An flock(2) on a file in the directory, not a marker file: the
// kernel drops it when the process dies, so a SIGKILL leaves nothing stale behind.
//
// Thread safety: none needed; acquired once when the store opens, released with the object.
#include <string>

#include "broker/status.hpp"

namespace broker::storage {

class DirLock {
 public:
  DirLock() = default;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();

  // Locks `dir` (which must exist) for this process; Unavailable, naming the holder's pid,
  // when another process holds it.
  Status acquire(const std::string& dir);

 private:
  int fd_ = -1;
};

}  // namespace broker::storage
