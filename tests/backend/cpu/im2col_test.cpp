#include <gtest/gtest.h>

#include "fd_util.h"
#include "backend/cpu/im2col.h"
#include "backend/cpu/plain_linear.h"

namespace clipkit::backend::cpu {
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

// The patch embedding as the vision tower runs it (im2col, then a linear layer over the patch
// rows) is the convolution, and its weight gradient the convolution's.
TEST(PatchEmbed, Im2colLinearIsTheConvolution) {
  const PatchShape s{2, 3, 6, 3};
  const int64_t C = 4;
  auto px = randn(s.N * s.CH * s.S * s.S, 71), W = randn(C * s.K(), 72, 0.3f), r = randn(s.patches() * C, 73);
  std::vector<float> cols(s.patches() * s.K()), y(s.patches() * C);
  im2col_patches(px.data(), s, cols.data());
  linear_forward(cols.data(), W.data(), nullptr, s.patches(), C, s.K(), y.data());
  auto PX = to_f64(px), Wd = to_f64(W);
  EXPECT_GRAD_NEAR("forward", y.data(), conv_ref(PX, Wd, s, C), 1e-5);
  std::vector<float> dW(C * s.K(), 0.0f);
  linear_backward(cols.data(), W.data(), r.data(), s.patches(), C, s.K(), nullptr, dW.data(), nullptr);
  EXPECT_GRAD_NEAR("dW", dW.data(), fd_grad([&](const std::vector<double>& v) { return conv_ref(PX, v, s, C); }, Wd, r), 1e-5);
}

}  // namespace
}  // namespace clipkit::backend::cpu
