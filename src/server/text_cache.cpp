#include "server/text_cache.h"

#include <algorithm>

namespace clipkit::server {

bool TextCache::get(const std::string& text, float* out, int64_t dim) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = at_.find(text);
  if (it == at_.end() || static_cast<int64_t>(it->second->second.size()) != dim) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::copy(it->second->second.begin(), it->second->second.end(), out);
  return true;
}

void TextCache::put(const std::string& text, const float* row, int64_t dim) {
  if (capacity_ == 0) return;
  std::lock_guard<std::mutex> l(mu_);
  if (auto it = at_.find(text); it != at_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(text, std::vector<float>(row, row + dim));
  at_.emplace(text, lru_.begin());
  if (lru_.size() > capacity_) {
    at_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

size_t TextCache::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return lru_.size();
}

}  // namespace clipkit::server
