#include "core/profile.h"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace clipkit {
namespace {

int64_t now_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

struct Table {
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, int64_t>> rows;  // name -> (wall ns, cpu ns)
  ~Table() {
    if (rows.empty()) return;
    int64_t tw = 0, tc = 0;
    for (auto& [n, v] : rows) tw += v.first, tc += v.second;
    std::fprintf(stderr, "\n%-24s %10s %10s %6s\n", "op", "wall ms", "cpu ms", "cpu %");
    for (auto& [n, v] : rows)
      std::fprintf(stderr, "%-24s %10.1f %10.1f %6.1f\n", n.c_str(), v.first / 1e6, v.second / 1e6, 100.0 * v.second / tc);
    std::fprintf(stderr, "%-24s %10.1f %10.1f\n", "total", tw / 1e6, tc / 1e6);
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

bool profiling_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("CLIPKIT_PROFILE");
    return e && *e && *e != '0';
  }();
  return on;
}

ProfileScope::ProfileScope(const char* name) : name_(profiling_enabled() ? name : nullptr) {
  if (!name_) return;
  wall0_ = now_ns(CLOCK_MONOTONIC);
  cpu0_ = now_ns(CLOCK_PROCESS_CPUTIME_ID);
}

ProfileScope::~ProfileScope() {
  if (!name_) return;
  const int64_t w = now_ns(CLOCK_MONOTONIC) - wall0_, c = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0_;
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& r = t.rows[name_];
  r.first += w;
  r.second += c;
}

}  // namespace clipkit
