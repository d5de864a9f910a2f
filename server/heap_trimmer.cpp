#include "server/heap_trimmer.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace broker::server {

void HeapTrimmer::start(std::chrono::milliseconds interval) {
#if defined(__GLIBC__)
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      malloc_trim(0);  // each arena in turn: a worker allocating meanwhile waits for one arena
      lock.lock();
    }
  });
#else
  (void)interval;
#endif
}

void HeapTrimmer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace broker::server
