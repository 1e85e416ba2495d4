// Opt-in op profiler: with CLIPKIT_PROFILE=1 in the environment, each ProfileScope adds its wall
// time and the process CPU time to a named counter, and a table is printed to stderr at exit.
// CPU time divided by the thread count estimates what the op costs on an otherwise idle machine
// (run with OMP_WAIT_POLICY=passive so waiting threads don't burn CPU).
#pragma once
#include <cstdint>

namespace clipkit {

bool profiling_enabled();

class ProfileScope {
 public:
  explicit ProfileScope(const char* name);
  ~ProfileScope();

 private:
  const char* name_;
  int64_t wall0_ = 0, cpu0_ = 0;
};

}  // namespace clipkit
