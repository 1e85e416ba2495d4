#include <gtest/gtest.h>

#include "fd_util.h"
#include "ops/tanh.h"

namespace clipkit::ops {
namespace {
using namespace clipkit::test;

TEST(Tanh, BackwardMatchesFiniteDifferences) {
  const int64_t n = 40;
  auto x = randn(n, 51, 1.5f), r = randn(n, 52);
  std::vector<float> y(n), dx(n);
  tanh_forward(x.data(), y.data(), n);
  auto f = [](const std::vector<double>& v) {
    std::vector<double> o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = std::tanh(v[i]);
    return o;
  };
  EXPECT_GRAD_NEAR("forward", y.data(), f(to_f64(x)), 1e-6);
  tanh_backward(y.data(), r.data(), dx.data(), n);
  EXPECT_GRAD_NEAR("dx", dx.data(), fd_grad(f, to_f64(x), r), 1e-6);
}

}  // namespace
}  // namespace clipkit::ops
