// The bf16 weight gradient dW [N, K] = dy^T [N, M] @ x [M, K] of the dense layers of ViT-B/32 (M = 1600
// rows: batch 32 x 50 tokens) and roberta-base (M = 640: batch 32 x 20 tokens), three ways:
//   matmul+sum   backend::cpu::matmul_bf16 reading dy transposed, accumulating into dW (sum post-op)
//   matmul       the same overwriting dW
//   ip           backend::cpu::weight_grad_bf16 (oneDNN's inner-product weight gradient), overwriting dW
// and the forward product y = x @ W^T of the same shape for reference. Caches are flushed before every
// call (inside a training step the operands are not in cache either). GFLOP/s, median of --repeats.
//
// usage: weight_grad_bench [--repeats 9] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "core/parallel.h"
#include "backend/cpu/matmul_bf16.h"

namespace {

std::vector<char> junk(96 << 20);
void flush_caches() {
  for (size_t i = 0; i < junk.size(); i += 64) junk[i] = static_cast<char>(junk[i] + 1);
}

double median_seconds(const std::function<void()>& f, int repeats) {
  for (int i = 0; i < 2; ++i) {
    flush_caches();
    f();
  }
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    flush_caches();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clipkit;
  int repeats = 9, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: weight_grad_bench [--repeats 9] [--threads N]\n");
      return 2;
    }
  }
  if (threads > 0) set_num_threads(threads);
  std::printf("%d threads, cold caches, median of %d; GFLOP/s\n", num_threads(), repeats);
  std::printf("%5s %5s %5s %12s %8s %8s %8s\n", "M", "N", "K", "matmul+sum", "matmul", "ip", "forward");
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1600, 2304, 768}, {1600, 768, 768}, {1600, 3072, 768},
                         {1600, 768, 3072}, {640, 2304, 768}, {640, 768, 768}, {640, 3072, 768}, {640, 768, 3072}}) {
    std::vector<uint16_t> dy(static_cast<size_t>(M * N), 0x3c00), x(static_cast<size_t>(M * K), 0x3c00),
        W(static_cast<size_t>(N * K), 0x3c00);  // bf16 0.0078125
    std::vector<float> dW(static_cast<size_t>(N * K), 0.0f), y(static_cast<size_t>(M * N));
    const double gflop = 2.0 * M * N * K / 1e9;
    const double acc = median_seconds(
        [&] { backend::cpu::matmul_bf16(true, false, N, K, M, dy.data(), N, x.data(), K, 1.0f, dW.data(), K); }, repeats);
    const double over = median_seconds(
        [&] { backend::cpu::matmul_bf16(true, false, N, K, M, dy.data(), N, x.data(), K, 0.0f, dW.data(), K); }, repeats);
    const double ip = median_seconds([&] { backend::cpu::weight_grad_bf16(M, N, K, dy.data(), x.data(), dW.data()); }, repeats);
    const double fwd = median_seconds(
        [&] { backend::cpu::matmul_bf16(false, true, M, N, K, x.data(), K, W.data(), K, 0.0f, y.data(), N); }, repeats);
    std::printf("%5lld %5lld %5lld %12.0f %8.0f %8.0f %8.0f\n", static_cast<long long>(M), static_cast<long long>(N),
                static_cast<long long>(K), gflop / acc, gflop / over, gflop / ip, gflop / fwd);
  }
  return 0;
}
