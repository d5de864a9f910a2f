#pragma once
// SubscriptionMap: a session's subscriptions, filter -> options, as a vector sorted by filter.
// A vehicle session holds one or a few filters; a std::map costs 48 bytes empty and an 80-byte
// node per filter, this costs 24 bytes plus 40 per filter in one block. Inserting is linear in
// the session's filter count, which Limits::max_subscriptions_per_session bounds.
//
// Iterators and references are invalidated by insertion (operator[] of a new filter, emplace)
// and erase, as with std::vector.
//
// Thread safety: owned by its session's worker.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/topic_index.hpp"

namespace broker::core {

class SubscriptionMap {
 public:
  using value_type = std::pair<std::string, SubscriptionOptions>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  iterator begin() noexcept { return items_.begin(); }
  iterator end() noexcept { return items_.end(); }
  const_iterator begin() const noexcept { return items_.begin(); }
  const_iterator end() const noexcept { return items_.end(); }

  iterator find(std::string_view filter) {
    auto it = lower_bound(filter);
    return it != items_.end() && it->first == filter ? it : items_.end();
  }
  bool contains(std::string_view filter) const {
    auto it = lower_bound(filter);
    return it != items_.end() && it->first == filter;
  }
  // The options of `filter`, inserted (default options) if it is new.
  SubscriptionOptions& operator[](std::string_view filter) {
    auto it = lower_bound(filter);
    if (it == items_.end() || it->first != filter) {
      it = items_.emplace(it, std::string(filter), SubscriptionOptions{});
      filter_bytes_ += filter.size();
    }
    return it->second;
  }
  // Inserts unless `filter` is there already (then nothing changes), as std::map::emplace.
  std::pair<iterator, bool> emplace(std::string filter, const SubscriptionOptions& options) {
    auto it = lower_bound(filter);
    if (it != items_.end() && it->first == filter) return {it, false};
    filter_bytes_ += filter.size();
    return {items_.emplace(it, std::move(filter), options), true};
  }
  iterator erase(iterator it) {
    filter_bytes_ -= it->first.size();
    auto next = items_.erase(it);
    if (!items_.empty()) return next;
    clear();
    return items_.end();
  }
  // Frees the storage too (the session keeps no capacity it no longer needs).
  void clear() noexcept {
    std::vector<value_type>().swap(items_);
    filter_bytes_ = 0;
  }
  // The filters' bytes together (Limits::max_subscription_bytes_per_session bounds them).
  std::size_t filter_bytes() const noexcept { return filter_bytes_; }

 private:
  struct Less {
    bool operator()(const value_type& a, std::string_view b) const noexcept { return a.first < b; }
  };
  iterator lower_bound(std::string_view filter) {
    return std::lower_bound(items_.begin(), items_.end(), filter, Less{});
  }
  const_iterator lower_bound(std::string_view filter) const {
    return std::lower_bound(items_.begin(), items_.end(), filter, Less{});
  }
  std::vector<value_type> items_;
  std::size_t filter_bytes_ = 0;
};

}  // namespace broker::core
