#include <gtest/gtest.h>

#include "fd_util.h"
#include "ops/patch_embed.h"

namespace clipkit::ops {
namespace {
using namespace clipkit::test;

// Conv2d(kernel = stride = P, no bias) written directly, in double.
std::vector<double> conv_ref(const std::vector<double>& px, const std::vector<double>& W, const PatchShape& s, int64_t C) {
  const int64_t G = s.G(), P = s.P, S = s.S;
  std::vector<double> y(static_cast<size_t>(s.patches() * C), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t gy = 0; gy < G; ++gy)
      for (int64_t gx = 0; gx < G; ++gx)
        for (int64_t o = 0; o < C; ++o) {
          double acc = 0;
          for (int64_t c = 0; c < s.CH; ++c)
            for (int64_t ky = 0; ky < P; ++ky)
              for (int64_t kx = 0; kx < P; ++kx)
                acc += px[((n * s.CH + c) * S + gy * P + ky) * S + gx * P + kx] * W[((o * s.CH + c) * P + ky) * P + kx];
          y[((n * G + gy) * G + gx) * C + o] = acc;
        }
  return y;
}

TEST(PatchEmbed, BackwardMatchesFiniteDifferences) {
  const PatchShape s{2, 3, 6, 3};
  const int64_t C = 4;
  auto px = randn(s.N * s.CH * s.S * s.S, 71), W = randn(C * s.K(), 72, 0.3f), r = randn(s.patches() * C, 73);
  std::vector<float> cols(s.patches() * s.K()), y(s.patches() * C);
  patch_embed_forward(px.data(), W.data(), C, s, cols.data(), y.data());
  auto PX = to_f64(px), Wd = to_f64(W);
  EXPECT_GRAD_NEAR("forward", y.data(), conv_ref(PX, Wd, s, C), 1e-5);
  std::vector<float> dW(C * s.K(), 0.0f), dpx(px.size());
  patch_embed_backward(r.data(), cols.data(), W.data(), C, s, dW.data(), dpx.data());
  EXPECT_GRAD_NEAR("dW", dW.data(), fd_grad([&](const std::vector<double>& v) { return conv_ref(PX, v, s, C); }, Wd, r), 1e-5);
  EXPECT_GRAD_NEAR("dpixels", dpx.data(), fd_grad([&](const std::vector<double>& v) { return conv_ref(v, Wd, s, C); }, PX, r), 1e-5);
}

}  // namespace
}  // namespace clipkit::ops
