#include "core/profile.h"

#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/flop_count.h"

namespace clipkit {
namespace {

int64_t now_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

struct Counter {
  int64_t wall = 0, cpu = 0, calls = 0, flops = 0;
  bool nested = false;
};

struct Table {
  std::mutex mu;
  std::map<std::string, Counter> rows;
  ~Table() {
    if (rows.empty()) return;
    int64_t tw = 0, tc = 0;
    for (auto& [n, v] : rows)
      if (!v.nested) tw += v.wall, tc += v.cpu;
    std::fprintf(stderr, "\n%-24s %10s %10s %6s\n", "op", "wall ms", "cpu ms", "cpu %");
    for (auto& [n, v] : rows)
      std::fprintf(stderr, "%-24s %10.1f %10.1f %6.1f%s\n", n.c_str(), v.wall / 1e6, v.cpu / 1e6, 100.0 * v.cpu / tc,
                   v.nested ? "  (nested)" : "");
    std::fprintf(stderr, "%-24s %10.1f %10.1f\n", "total", tw / 1e6, tc / 1e6);
  }
};

Table& table() {
  static Table t;
  return t;
}

std::atomic<bool>& enabled() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("CLIPKIT_PROFILE");
    return e && *e && *e != '0';
  }()};
  return on;
}

thread_local int t_depth = 0;

}  // namespace

bool profiling_enabled() { return enabled().load(std::memory_order_relaxed); }
void profile_enable() { enabled().store(true); }

std::vector<ProfileRow> profile_take() {
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  std::vector<ProfileRow> out;
  for (auto& [n, v] : t.rows) out.push_back({n, v.wall / 1e6, v.cpu / 1e6, v.calls, v.flops, v.nested});
  t.rows.clear();
  return out;
}

ProfileScope::ProfileScope(const char* name) : name_(profiling_enabled() ? name : nullptr) {
  if (!name_) return;
  nested_ = t_depth++ > 0;
  wall0_ = now_ns(CLOCK_MONOTONIC);
  cpu0_ = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  flops0_ = flops_counted();
}

ProfileScope::~ProfileScope() {
  if (!name_) return;
  const int64_t w = now_ns(CLOCK_MONOTONIC) - wall0_, c = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0_;
  --t_depth;
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& r = t.rows[name_];
  r.wall += w;
  r.cpu += c;
  r.calls += 1;
  r.flops += flops_counted() - flops0_;
  r.nested = r.nested || nested_;
}

}  // namespace clipkit
