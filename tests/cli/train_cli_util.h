// Shared by the training CLI tests: comparing a tensor of two checkpoints, and running clipkit
// under mpirun.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "cli_util.h"
#include "io/safetensors.h"

namespace clipkit::test {

// max |a - b| over the tensor `name` of two safetensors files.
inline double max_diff(const std::string& a, const std::string& b, const std::string& name) {
  SafeTensorsFile fa(a), fb(b);
  Tensor x = fa.get(name).to_f32(), y = fb.get(name).to_f32();
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(double(x.ptr<float>()[i]) - y.ptr<float>()[i]));
  return m;
}

inline bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

// `clipkit ARGS` as np processes under mpirun (root allowed, oversubscribed), output to `log`.
// Returns the shell's status (0 = every rank succeeded).
inline int run_clipkit_mpi(int np, const std::string& args, const std::string& log) {
  const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np " +
                          std::to_string(np) + " " + std::string(CLIPKIT_BINARY) + args + " > " + log + " 2>&1";
  return std::system(cmd.c_str());
}

}  // namespace clipkit::test
