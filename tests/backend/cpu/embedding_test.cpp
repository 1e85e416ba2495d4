#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/cpu/embedding.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

TEST(Embedding, BackwardMatchesFiniteDifferences) {
  const int64_t V = 6, C = 5, n = 7;
  const std::vector<int32_t> ids = {3, 1, 3, 0, 5, 3, 1};  // repeats accumulate
  auto T = randn(V * C, 41), r = randn(n * C, 42), base = randn(n * C, 43);
  std::vector<float> y = base;
  embedding_forward(T.data(), ids.data(), n, C, y.data(), /*accumulate=*/true);
  auto f = [&](const std::vector<double>& t) {
    std::vector<double> o(static_cast<size_t>(n * C));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < C; ++c) o[i * C + c] = base[i * C + c] + t[ids[i] * C + c];
    return o;
  };
  EXPECT_GRAD_NEAR("forward", y.data(), f(to_f64(T)), 1e-6);
  std::vector<float> dT(V * C, 0.0f);
  embedding_backward(r.data(), ids.data(), n, C, dT.data());
  auto ref = fd_grad(f, to_f64(T), r);
  EXPECT_GRAD_NEAR("dtable", dT.data(), ref, 1e-6);
  // padding_idx: the skipped id's row stays zero, the others are unchanged
  std::vector<float> dS(V * C, 0.0f);
  embedding_backward(r.data(), ids.data(), n, C, dS.data(), /*skip_id=*/1);
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(dS[1 * C + c], 0.0f);
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(dS[3 * C + c], dT[3 * C + c]);
  std::vector<float> y2(n * C);
  embedding_forward(T.data(), ids.data(), n, C, y2.data(), false);
  EXPECT_EQ(y2[2 * C + 4], T[3 * C + 4]);
}

}  // namespace
}  // namespace clipkit::backend::cpu
