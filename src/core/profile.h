// Opt-in op profiler: with CLIPKIT_PROFILE=1 in the environment (or profile_enable()), each
// ProfileScope adds its wall time and the process CPU time to a named counter. A scope opened
// inside another on the same thread is "nested": it is part of its parent's time. The table is
// printed to stderr at exit, unless profile_take() took the counters first (`clipkit bench train
// --profile` takes them per row, for the timed steps only).
// Each scope also adds the matmul FLOPs counted while it was open (core/flop_count.h), so an op's
// row gives its FLOP rate.
// CPU time divided by the thread count estimates what the op costs on an otherwise idle machine
// (run with OMP_WAIT_POLICY=passive so waiting threads don't burn CPU).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace clipkit {

bool profiling_enabled();
void profile_enable();

struct ProfileRow {
  std::string name;
  double wall_ms = 0, cpu_ms = 0;
  int64_t calls = 0;
  int64_t flops = 0;    // matmul FLOPs counted inside
  bool nested = false;  // opened inside another scope (its time is in that one's too)
};
// The counters so far, by name, and zeroes them.
std::vector<ProfileRow> profile_take();

class ProfileScope {
 public:
  explicit ProfileScope(const char* name);
  ~ProfileScope();

 private:
  const char* name_;
  bool nested_ = false;
  int64_t wall0_ = 0, cpu0_ = 0, flops0_ = 0;
};

}  // namespace clipkit
