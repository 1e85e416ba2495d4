#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/cpu/activation.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

double act_ref(double x, Act a) {
  switch (a) {
    case Act::QuickGelu: return x / (1 + std::exp(-1.702 * x));
    case Act::Gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Act::GeluNew: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case Act::Relu: return x > 0 ? x : 0;
    case Act::Tanh: return std::tanh(x);
    case Act::None: return x;
  }
  return 0;
}

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

}  // namespace
}  // namespace clipkit::backend::cpu
