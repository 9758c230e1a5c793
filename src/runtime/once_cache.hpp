// A bounded, thread-safe cache that computes each value once: the first caller of a key computes
// it with no lock held, later callers of that key wait for it, callers of other keys go on. A
// computation that throws caches nothing; its waiters get the same error. When full, the least
// recently used finished value is dropped (holders of its shared_ptr keep it alive).
#pragma once
#include <cstddef>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "mtile/runtime.hpp"

namespace mtile {

template <class Key, class Value>
class OnceCache {
 public:
  using Ptr = std::shared_ptr<Value>;
  explicit OnceCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // `make` is any callable returning Ptr (a template: no std::function on the launch path).
  template <class Make>
  Ptr get(const Key& key, Make&& make) {
    std::shared_future<Ptr> found;
    std::optional<std::promise<Ptr>> promise;  // made on a miss only: a hit allocates nothing
    {
      std::lock_guard lock(mu_);
      if (auto it = map_.find(key); it != map_.end()) {
        ++counts_.hits;
        if (it->second.ready) lru_.splice(lru_.begin(), lru_, it->second.lru);
        found = it->second.value;
      } else {
        ++counts_.misses;
        promise.emplace();
        map_[key].value = promise->get_future().share();
      }
    }
    if (found.valid()) return found.get();  // waits, unlocked, while another caller computes it

    Ptr value;
    try {
      value = make();
    } catch (...) {
      std::lock_guard lock(mu_);
      promise->set_exception(std::current_exception());
      map_.erase(key);  // nothing cached: the next caller tries again
      throw;
    }
    std::lock_guard lock(mu_);
    promise->set_value(value);
    auto it = map_.find(key);
    if (it != map_.end() && !it->second.ready) {  // clear() may have dropped it meanwhile
      lru_.push_front(key);
      it->second.lru = lru_.begin();
      it->second.ready = true;
      while (lru_.size() > capacity_) {
        map_.erase(lru_.back());
        lru_.pop_back();
        ++counts_.evictions;
      }
    }
    return value;
  }

  CacheCounts counts() const {
    std::lock_guard lock(mu_);
    CacheCounts c = counts_;
    c.entries = lru_.size();
    c.capacity = capacity_;
    return c;
  }

  // Drops every finished value (values being computed are kept when they finish).
  void clear() {
    std::lock_guard lock(mu_);
    for (const Key& k : lru_) map_.erase(k);
    lru_.clear();
  }

 private:
  struct Entry {
    std::shared_future<Ptr> value;
    typename std::list<Key>::iterator lru;
    bool ready = false;
  };
  mutable std::mutex mu_;
  std::map<Key, Entry> map_;
  std::list<Key> lru_;  // finished entries, most recently used first
  size_t capacity_;
  CacheCounts counts_;
};

}  // namespace mtile
