#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/cpu/layernorm.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

std::vector<double> ln_ref(const std::vector<double>& x, const std::vector<double>& g, const std::vector<double>& b,
                           int64_t M, int64_t C, double eps) {
  std::vector<double> y(x.size());
  for (int64_t m = 0; m < M; ++m) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[m * C + c];
    mu /= C;
    for (int64_t c = 0; c < C; ++c) var += (x[m * C + c] - mu) * (x[m * C + c] - mu);
    const double rs = 1.0 / std::sqrt(var / C + eps);
    for (int64_t c = 0; c < C; ++c) y[m * C + c] = (x[m * C + c] - mu) * rs * g[c] + b[c];
  }
  return y;
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  const int64_t M = 4, C = 24;
  const float eps = 1e-5f;
  auto x = randn(M * C, 11, 2.0f), g = randn(C, 12), b = randn(C, 13), r = randn(M * C, 14);
  for (int64_t c = 0; c < C; ++c) x[c] += 3.0f;  // a row with a large mean
  std::vector<float> y(M * C), mean(M), rstd(M);
  layernorm_forward(x.data(), g.data(), b.data(), y.data(), M, C, eps, mean.data(), rstd.data());
  auto X = to_f64(x), G = to_f64(g), Bt = to_f64(b);
  EXPECT_GRAD_NEAR("forward", y.data(), ln_ref(X, G, Bt, M, C, eps), 1e-5);
  std::vector<float> dx(M * C), dg(C, 0.0f), db(C, 0.0f);
  layernorm_backward(r.data(), x.data(), g.data(), mean.data(), rstd.data(), dx.data(), dg.data(), db.data(), M, C);
  EXPECT_GRAD_NEAR("dx", dx.data(), fd_grad([&](const std::vector<double>& v) { return ln_ref(v, G, Bt, M, C, eps); }, X, r), 1e-5);
  EXPECT_GRAD_NEAR("dgamma", dg.data(), fd_grad([&](const std::vector<double>& v) { return ln_ref(X, v, Bt, M, C, eps); }, G, r), 1e-5);
  EXPECT_GRAD_NEAR("dbeta", db.data(), fd_grad([&](const std::vector<double>& v) { return ln_ref(X, G, v, M, C, eps); }, Bt, r), 1e-5);
}

}  // namespace
}  // namespace clipkit::backend::cpu
