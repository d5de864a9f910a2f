#pragma once
// Gives memory the process freed back to the system every so often (glibc's malloc_trim).
//
// Why: glibc keeps what large messages freed (file and configuration pushes of megabytes) in
// its arenas for reuse. After 60 files of 3 MB went to 5 vehicles, brokerd stayed 136 MB above
// its baseline with every client gone. Allocating every large buffer with mmap instead (the
// mmap_threshold tunable) gave it back at once but doubled the broker's CPU for that push
// (5.9 against 2.9 CPU-seconds); trimming now and then costs page faults once per interval.
//
// Process policy, so brokerd's and not the library's: an embedding application decides about
// its own heap. A no-op without glibc.
//
// Thread safety: start() and stop() from one thread; the trimming runs on a thread of its own.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace broker::server {

class HeapTrimmer {
 public:
  HeapTrimmer() = default;
  ~HeapTrimmer() { stop(); }
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  void start(std::chrono::milliseconds interval);
  void stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace broker::server
