#pragma once
// ByteBudget: bytes a worker holds for clients that have not finished sending something (a
// CONNECT, a packet), counted against a bound, so that many such clients together cannot
// exhaust memory. Holders report their own share; the budget only sums and compares.
//
// Thread safety: one worker thread.
#include <cstddef>

namespace broker::core {

class ByteBudget {
 public:
  explicit constexpr ByteBudget(std::size_t limit) noexcept : limit_(limit) {}
  // One holder's share went from `before` to `after`. False while the total is over the bound.
  bool change(std::size_t before, std::size_t after) noexcept {
    used_ = used_ - before + after;
    return used_ <= limit_;
  }

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
};

}  // namespace broker::core
