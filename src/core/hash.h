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

}  // namespace clipkit
