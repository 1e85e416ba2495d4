// The service's cache of recent text embeddings: least recently used first out, at most `capacity`
// entries. The key is the exact text: one queue serves one model with one set of options
// (tokenizer, max length, precision), so the same text always gives the same embedding; a cached
// row is the one the model gave the first time. Thread-safe.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clipkit::server {

class TextCache {
 public:
  explicit TextCache(size_t capacity) : capacity_(capacity) {}
  size_t capacity() const { return capacity_; }
  // Copies the embedding of `text` into out[0, dim) and marks it recently used; false when absent.
  bool get(const std::string& text, float* out, int64_t dim);
  void put(const std::string& text, const float* row, int64_t dim);
  size_t size() const;

 private:
  using Entry = std::pair<std::string, std::vector<float>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> at_;
};

}  // namespace clipkit::server
