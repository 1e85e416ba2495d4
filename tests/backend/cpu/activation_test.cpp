#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/activation_ref.h"
#include "backend/cpu/activation.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;


TEST(Activation, BackwardMatchesFiniteDifferences) {
  for (Act a : {Act::QuickGelu, Act::Gelu, Act::GeluNew, Act::Tanh}) {
    const int64_t n = 64;
    auto x = randn(n, 31, 2.5f), r = randn(n, 32);
    std::vector<float> y(n), dx(n);
    act_forward(x.data(), y.data(), n, a);
    auto f = [&](const std::vector<double>& v) {
      std::vector<double> o(v.size());
      for (size_t i = 0; i < v.size(); ++i) o[i] = act_ref(v[i], a);
      return o;
    };
    auto X = to_f64(x);
    EXPECT_GRAD_NEAR(act_name(a), y.data(), f(X), 1e-5);
    act_backward(x.data(), r.data(), dx.data(), n, a);
    EXPECT_GRAD_NEAR((std::string("d ") + act_name(a)).c_str(), dx.data(), fd_grad(f, X, r), 1e-5);
  }
}


// The vectorized kernels over [-12, 12] and beyond (an odd count: the scalar tail runs too), in
// place as the training path calls them: the forward within a few float32 ulps of the exact value
// (relative; absolute below 1e-7, where act(x) underflows towards 0; tanh is libm's), the gradient -- O(1), and
// crossing zero where relative errors mean nothing -- within 2e-6 absolute per unit of dy. (libm's
// scalar expf/erff, which these replaced, were 0.8 relative off in gelu's left tail: 1 + erf(x)
// cancels.)
TEST(Activation, MatchesFloat64AcrossTheRange) {
  std::vector<float> x;
  for (int i = -2400; i <= 2400; ++i) x.push_back(static_cast<float>(i) * 0.005f);
  for (float v : {-100.0f, -30.0f, 30.0f, 100.0f, 1e-20f, -1e-20f}) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  const auto dy = randn(x.size(), 7);
  for (Act a : {Act::QuickGelu, Act::Gelu, Act::GeluNew, Act::Relu, Act::Tanh, Act::None}) {
    std::vector<float> y = x, dx = dy;
    act_forward(y.data(), y.data(), n, a);
    act_backward(x.data(), dx.data(), dx.data(), n, a);
    double worst = 0, worst_d = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double want = act_ref(x[i], a), dwant = dy[i] * act_grad_ref(x[i], a);
      worst = std::max(worst, std::fabs(y[i] - want) / std::max(std::fabs(want), 1e-7));
      worst_d = std::max(worst_d, std::fabs(dx[i] - dwant) / std::fabs(dy[i]));
    }
    EXPECT_LT(worst, 3e-6) << act_name(a);
    EXPECT_LT(worst_d, 2e-6) << act_name(a);
    std::printf("%-10s forward %.2e relative, gradient %.2e absolute (largest)\n", act_name(a), worst, worst_d);
  }
}

}  // namespace
}  // namespace clipkit::backend::cpu
