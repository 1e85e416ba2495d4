#include <gtest/gtest.h>

#include "fd_util.h"
#include "ops/pooling.h"

namespace clipkit::ops {
namespace {
using namespace clipkit::test;

TEST(Pooling, BackwardMatchesFiniteDifferences) {
  const int64_t B = 3, L = 4, C = 5;
  const std::vector<int64_t> pos = {2, 0, 3};
  auto x = randn(B * L * C, 61), r = randn(B * C, 62);
  for (const int64_t* p : {pos.data(), static_cast<const int64_t*>(nullptr)}) {
    std::vector<float> y(B * C);
    pool_rows_forward(x.data(), p, B, L, C, y.data());
    auto f = [&](const std::vector<double>& v) {
      std::vector<double> o(static_cast<size_t>(B * C));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < C; ++c) o[b * C + c] = v[(b * L + (p ? p[b] : 0)) * C + c];
      return o;
    };
    EXPECT_GRAD_NEAR("forward", y.data(), f(to_f64(x)), 0);
    std::vector<float> dx(B * L * C, 0.0f);
    pool_rows_backward(r.data(), p, B, L, C, dx.data());
    EXPECT_GRAD_NEAR("dx", dx.data(), fd_grad(f, to_f64(x), r), 1e-8);
  }
}

}  // namespace
}  // namespace clipkit::ops
