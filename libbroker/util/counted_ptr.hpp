#pragma once
// CountedPtr<T>: a reference to an object that keeps its own reference count, for the
// immutable objects every worker shares (protocol::Payload, core::Message). It is one pointer
// where a shared_ptr is two, and the object needs no separate control block, so it can hold
// its variable-length bytes in the same allocation.
//
// T provides `mutable std::atomic<std::uint32_t> references_` (1 when made) and
// `static void destroy(const T*) noexcept`, both reachable by CountedPtr (a friend), and makes
// its objects with CountedPtr::adopt. A reference to a mutable T is its single owner while it
// is built: it moves, never copies, and becomes a reference to const T once shared.
//
// Thread safety: as shared_ptr: copies and drops of references to one object may race; the
// last drop destroys it on whichever thread that is.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace broker {

// A T built from `args` with `extra` bytes after it in the same block (the variable-length
// part of a counted object: T reads it at `this + 1`). Freed by delete_with_trailing.
template <typename T, typename... Args>
T* new_with_trailing(std::size_t extra, Args&&... args) {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  void* memory = ::operator new(sizeof(T) + extra);
  return new (memory) T(std::forward<Args>(args)...);  // noexcept constructors: nothing leaks
}

template <typename T>
void delete_with_trailing(const T* object) noexcept {
  object->~T();
  ::operator delete(const_cast<T*>(object));
}

template <typename T>
class CountedPtr {
 public:
  CountedPtr() noexcept = default;
  CountedPtr(std::nullptr_t) noexcept {}  // NOLINT: null converts, as for shared_ptr

  CountedPtr(const CountedPtr& other) noexcept
    requires std::is_const_v<T>
      : object_(other.object_) {
    retain();
  }
  CountedPtr(const CountedPtr&) requires(!std::is_const_v<T>) = delete;
  CountedPtr(CountedPtr&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  // The owner of an object being built hands it over as a shared, const one.
  CountedPtr(CountedPtr<std::remove_const_t<T>>&& other) noexcept  // NOLINT
    requires std::is_const_v<T>
      : object_(std::exchange(other.object_, nullptr)) {}
  CountedPtr& operator=(CountedPtr other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~CountedPtr() {
    // The last drop must see every other thread's use of the object before destroying it.
    if (object_ && object_->references_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      std::remove_const_t<T>::destroy(object_);
  }

  T* get() const noexcept { return object_; }
  T& operator*() const noexcept { return *object_; }
  T* operator->() const noexcept { return object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }
  friend bool operator==(const CountedPtr& a, const CountedPtr& b) noexcept { return a.object_ == b.object_; }
  friend bool operator==(const CountedPtr& p, std::nullptr_t) noexcept { return p.object_ == nullptr; }
  // How many references there are (for tests; racy while other threads hold it).
  std::uint32_t use_count() const noexcept {
    return object_ ? object_->references_.load(std::memory_order_relaxed) : 0;
  }
  void reset() noexcept { *this = nullptr; }

 private:
  friend std::remove_const_t<T>;  // makes its objects with adopt()
  template <typename>
  friend class CountedPtr;

  // Takes over a new object (its count is 1 already).
  static CountedPtr adopt(T* object) noexcept {
    CountedPtr p;
    p.object_ = object;
    return p;
  }

  void retain() noexcept {
    // A new reference needs no ordering: the one it was copied from keeps the object alive.
    if (object_) object_->references_.fetch_add(1, std::memory_order_relaxed);
  }

  T* object_ = nullptr;
};

}  // namespace broker
