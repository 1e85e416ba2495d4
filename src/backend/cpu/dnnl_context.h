// The process-wide oneDNN CPU engine and stream (oneDNN runs on the same OpenMP runtime as our ops).
#pragma once
#include <dnnl.hpp>
#include <map>
#include <mutex>

namespace clipkit::backend::cpu {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

// oneDNN primitives (with their memory descriptors) by shape, built on first use. get() returns a
// copy: dnnl handles are reference-counted, so it stays valid when another caller clears the cache,
// which happens past `max` entries (text batches vary in length).
template <typename Key, typename Value>
class PrimitiveCache {
 public:
  explicit PrimitiveCache(size_t max) : max_(max) {}
  template <typename Build>
  Value get(const Key& key, Build&& build) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    if (cache_.size() > max_) cache_.clear();
    return cache_.emplace(key, build()).first->second;
  }

 private:
  size_t max_;
  std::mutex mu_;
  std::map<Key, Value> cache_;
};

}  // namespace clipkit::backend::cpu
