// FNV-1a 64-bit: a small, stable content hash for cache keys and identity checks (not cryptographic).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace clipkit {

struct Fnv1a {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  // strings are terminated so that ("ab","c") and ("a","bc") differ
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\0", 1);
  }
  template <typename T>
  void add_pod(T v) { add(&v, sizeof v); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

// 64-bit content hash of a byte string: FNV-1a over 8-byte words, then a final mix. Fast, and
// not cryptographic: callers confirm a match byte for byte. Never 0 (0 means "unknown").
inline uint64_t content_hash(const uint8_t* d, size_t n) {
  uint64_t h = 1469598103934665603ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, d + i, 8);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ d[i]) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

}  // namespace clipkit
