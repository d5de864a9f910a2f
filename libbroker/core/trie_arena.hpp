#pragma once
// TrieArena: where the topic index keeps its nodes and child tables.
//
// Design: at ten million subscriptions a match is a chain of dependent cache misses through a
// gigabyte of nodes, and with 4 KiB pages nearly each of them is a TLB miss too (measured: the
// same index matches about a third faster on huge pages). So blocks are carved from 2 MiB
// chunks that the kernel is asked to back with transparent huge pages (madvise; the first
// few chunks are not, so a small index costs no more than its bytes). It also drops malloc's
// per-block header and 16-byte rounding: blocks are rounded to 8 bytes.
// - up to kSmallMax bytes: one free list per 8-byte size;
// - up to kChunk / 2 (child tables are powers of two): one free list per power of two;
// - larger: a mapping of its own, advised for huge pages.
// Freed blocks are reused for the same size and not returned to the system until the arena
// is destroyed (a broker's subscription count tends to come back to the same level).
//
// Under AddressSanitizer every block comes from the heap instead, so that overflows out of a
// block are still caught.
//
// Thread safety: none; the topic index uses it under its writers' lock only.
#include <sys/mman.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace broker::core {

#if defined(__SANITIZE_ADDRESS__)
#define BROKER_TRIE_ARENA_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BROKER_TRIE_ARENA_CHECKED 1
#endif
#endif

class TrieArena {
 public:
  TrieArena() = default;
  ~TrieArena() {
    for (void* c : chunks_) ::munmap(c, kChunk);
  }
  TrieArena(const TrieArena&) = delete;
  TrieArena& operator=(const TrieArena&) = delete;

  // A block of at least `bytes` bytes, 8-byte aligned. OOM is fatal (STYLE.md 3).
  void* allocate(std::size_t bytes) {
#ifdef BROKER_TRIE_ARENA_CHECKED
    return ::operator new(bytes);
#else
    const std::size_t size = block_size(bytes);
    if (size > kChunk / 2) return map(size, true);
    FreeBlock*& list = free_list(size);
    if (list != nullptr) {
      FreeBlock* b = list;
      list = b->next;
      return b;
    }
    if (static_cast<std::size_t>(end_ - bump_) < size) new_chunk();
    void* p = bump_;
    bump_ += size;
    return p;
#endif
  }

  // REQUIRES: `p` came from allocate(bytes) with the same `bytes`.
  void deallocate(void* p, std::size_t bytes) noexcept {
#ifdef BROKER_TRIE_ARENA_CHECKED
    (void)bytes;
    ::operator delete(p);
#else
    const std::size_t size = block_size(bytes);
    if (size > kChunk / 2) {
      ::munmap(p, size);
      return;
    }
    FreeBlock*& list = free_list(size);
    list = new (p) FreeBlock{list};
#endif
  }

  // Bytes taken from the system (chunks only; large blocks are mapped on their own).
  std::size_t chunk_bytes() const noexcept { return chunks_.size() * kChunk; }

 private:
  static constexpr std::size_t kGrain = 8;
  static constexpr std::size_t kSmallMax = 512;
  static constexpr std::size_t kChunk = std::size_t{2} << 20;  // one huge page
  static constexpr std::size_t kPlainChunks = 4;               // before asking for huge pages
  static constexpr unsigned kLargeClasses = 12;                // 1 KiB .. 1 MiB

  struct FreeBlock {
    FreeBlock* next;
  };

  static std::size_t block_size(std::size_t bytes) noexcept {
    if (bytes <= kSmallMax) return bytes == 0 ? kGrain : (bytes + kGrain - 1) & ~(kGrain - 1);
    return std::bit_ceil(bytes);
  }

  FreeBlock*& free_list(std::size_t size) noexcept {
    if (size <= kSmallMax) return small_[size / kGrain - 1];
    return large_[std::countr_zero(size) - std::countr_zero(kSmallMax) - 1];
  }

  static void* map(std::size_t size, bool huge) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();  // OOM is fatal (STYLE.md 3)
    if (huge) (void)::madvise(p, size, MADV_HUGEPAGE);  // advice only: fine if refused
    return p;
  }

  // A fresh chunk, 2 MiB aligned so that the kernel can back it with one huge page. The old
  // chunk's tail (smaller than the block asked for) is left unused.
  void new_chunk() {
    auto* raw = static_cast<char*>(map(2 * kChunk, false));
    const auto addr = reinterpret_cast<std::uintptr_t>(raw);
    const std::size_t head = (kChunk - (addr & (kChunk - 1))) & (kChunk - 1);
    if (head != 0) ::munmap(raw, head);
    ::munmap(raw + head + kChunk, kChunk - head);
    char* chunk = raw + head;
    if (chunks_.size() >= kPlainChunks) (void)::madvise(chunk, kChunk, MADV_HUGEPAGE);
    chunks_.push_back(chunk);
    bump_ = chunk;
    end_ = chunk + kChunk;
  }

  FreeBlock* small_[kSmallMax / kGrain] = {};
  FreeBlock* large_[kLargeClasses] = {};
  std::vector<void*> chunks_;
  char* bump_ = nullptr;
  char* end_ = nullptr;
};

}  // namespace broker::core
