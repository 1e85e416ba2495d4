#include <algorithm>
#include <chrono>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/packed_linear.h"

namespace clipkit::backend::cpu {

double matmul_peak_gflops(Precision p) {
  using clk = std::chrono::steady_clock;
  const int64_t M = 1600, K = 768, N = 3072;
  std::vector<float> W(static_cast<size_t>(N * K), 0.01f), x(static_cast<size_t>(M * K), 0.5f), y(static_cast<size_t>(M * N));
  PackedLinear l(W.data(), nullptr, N, K, p);
  l.forward(x.data(), M, y.data());
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = clk::now();
    for (int i = 0; i < 4; ++i) l.forward(x.data(), M, y.data());
    const double s = std::chrono::duration<double>(clk::now() - t0).count();
    best = std::max(best, 4 * 2.0 * M * N * K / s / 1e9);
  }
  return best;
}

}  // namespace clipkit::backend::cpu
