#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/cpu/plain_linear.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

std::vector<double> dense_ref(const std::vector<double>& x, const std::vector<double>& W, const std::vector<double>& b,
                              int64_t M, int64_t N, int64_t K) {
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b.empty() ? 0.0 : b[n];
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * W[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

TEST(PlainLinear, BackwardMatchesFiniteDifferences) {
  const int64_t M = 5, N = 7, K = 6;
  auto x = randn(M * K, 1), W = randn(N * K, 2), b = randn(N, 3), r = randn(M * N, 4);
  std::vector<float> y(M * N);
  linear_forward(x.data(), W.data(), b.data(), M, N, K, y.data());
  EXPECT_GRAD_NEAR("forward", y.data(), dense_ref(to_f64(x), to_f64(W), to_f64(b), M, N, K), 1e-6);
  std::vector<float> dx(M * K, 123.0f), dW(N * K, 0.0f), db(N, 0.0f);
  linear_backward(x.data(), W.data(), r.data(), M, N, K, dx.data(), dW.data(), db.data());
  auto X = to_f64(x), Wd = to_f64(W), Bd = to_f64(b);
  EXPECT_GRAD_NEAR("dx", dx.data(), fd_grad([&](const std::vector<double>& v) { return dense_ref(v, Wd, Bd, M, N, K); }, X, r), 1e-6);
  EXPECT_GRAD_NEAR("dW", dW.data(), fd_grad([&](const std::vector<double>& v) { return dense_ref(X, v, Bd, M, N, K); }, Wd, r), 1e-6);
  EXPECT_GRAD_NEAR("db", db.data(), fd_grad([&](const std::vector<double>& v) { return dense_ref(X, Wd, v, M, N, K); }, Bd, r), 1e-6);
  // dW/db accumulate; dx can accumulate too
  std::vector<float> dW2 = dW, dx2 = dx;
  linear_backward(x.data(), W.data(), r.data(), M, N, K, dx2.data(), dW2.data(), nullptr, Precision::F32, true);
  for (size_t i = 0; i < dW.size(); ++i) EXPECT_NEAR(dW2[i], 2 * dW[i], 1e-5);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2[i], 2 * dx[i], 1e-5);
}

TEST(PlainLinear, Bf16TracksFp32) {
  const int64_t M = 33, N = 40, K = 64;
  auto x = randn(M * K, 5), W = randn(N * K, 6, 0.1f), b = randn(N, 7), r = randn(M * N, 8);
  std::vector<float> y(M * N), yb(M * N);
  linear_forward(x.data(), W.data(), b.data(), M, N, K, y.data());
  linear_forward(x.data(), W.data(), b.data(), M, N, K, yb.data(), Precision::BF16);
  std::vector<double> yd(y.begin(), y.end());
  EXPECT_GRAD_NEAR("bf16 forward", yb.data(), yd, 2e-2);
  std::vector<float> dx(M * K), dW(N * K, 0.0f), dxb(M * K), dWb(N * K, 0.0f);
  linear_backward(x.data(), W.data(), r.data(), M, N, K, dx.data(), dW.data(), nullptr);
  linear_backward(x.data(), W.data(), r.data(), M, N, K, dxb.data(), dWb.data(), nullptr, Precision::BF16);
  EXPECT_GRAD_NEAR("bf16 dx", dxb.data(), std::vector<double>(dx.begin(), dx.end()), 2e-2);
  EXPECT_GRAD_NEAR("bf16 dW", dWb.data(), std::vector<double>(dW.begin(), dW.end()), 5e-2);
}

}  // namespace
}  // namespace clipkit::backend::cpu
