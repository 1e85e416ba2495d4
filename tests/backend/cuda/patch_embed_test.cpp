#include "backend/cuda/patch_embed.h"
#include "cuda_test_util.h"
#include "reference.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaPatchEmbed : public CudaTest {};

TEST_F(CudaPatchEmbed, Im2colCol2imAndTheConvolution) {
  const backend::PatchShape s{2, 3, 70, 16};  // 70 = 4 patches of 16 + 6 pixels outside the grid
  const int64_t C = 24, rows = s.patches(), K = s.K(), npix = s.N * s.CH * s.S * s.S;
  const std::vector<float> px = random_vec(static_cast<size_t>(npix), 81), W = random_vec(static_cast<size_t>(C * K), 82, 0.1f);
  // the reference im2col, straight from the definition: fn(column element, pixel) for each pair
  const int64_t G = s.G();
  auto each_pair = [&](auto fn) {
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t py = 0; py < G; ++py)
        for (int64_t pxi = 0; pxi < G; ++pxi)
          for (int64_t c = 0; c < s.CH; ++c)
            for (int64_t ky = 0; ky < s.P; ++ky)
              for (int64_t kx = 0; kx < s.P; ++kx)
                fn(((n * G + py) * G + pxi) * K + (c * s.P + ky) * s.P + kx,
                   ((n * s.CH + c) * s.S + py * s.P + ky) * s.S + pxi * s.P + kx);
  };
  std::vector<float> cols_ref(static_cast<size_t>(rows * K));
  each_pair([&](int64_t col, int64_t pix) { cols_ref[col] = px[pix]; });
  auto dpx = up(px);
  auto cols = poisoned<float>(rows * K);
  im2col_patches(dpx.p(), s, cols.p(), ctx());
  EXPECT_EQ(down(cols), cols_ref);
  auto colsb = poisoned<uint16_t>(rows * K);
  im2col_patches_bf16(dpx.p(), s, colsb.p(), ctx());
  EXPECT_EQ(down(colsb), to_bf16_host(cols_ref));
  // col2im is im2col's adjoint: pixels in no patch get 0
  auto back = poisoned<float>(npix);
  col2im_patches(cols.p(), s, back.p(), ctx());
  const std::vector<float> bh = down(back);
  for (int64_t i = 0; i < npix; ++i) {
    const int64_t xx = i % s.S, yy = (i / s.S) % s.S;
    ASSERT_EQ(bh[i], xx < G * s.P && yy < G * s.P ? px[i] : 0.0f) << "pixel " << i;
  }
  // y = cols W^T; dW += dy^T cols; dpixels = col2im(dy W)
  const std::vector<double> y_ref = gemm_ref(false, true, rows, C, K, cols_ref, K, W, K, C);
  auto dW = up(W);
  auto y = poisoned<float>(rows * C);
  auto cols2 = poisoned<float>(rows * K);
  patch_embed_forward(dpx.p(), dW.p(), C, s, cols2.p(), y.p(), ctx());
  EXPECT_REL_ERR("y", down(y), y_ref, kF32Tol);
  const std::vector<float> dy = random_vec(static_cast<size_t>(rows * C), 83), gW0 = random_vec(static_cast<size_t>(C * K), 84);
  std::vector<double> gW_ref = gemm_ref(true, false, C, K, rows, dy, C, cols_ref, K, K);
  for (size_t i = 0; i < gW_ref.size(); ++i) gW_ref[i] += gW0[i];
  const std::vector<double> dcols = gemm_ref(false, false, rows, K, C, dy, C, W, K, K);
  std::vector<double> dpx_ref(static_cast<size_t>(npix), 0.0);  // the reference im2col's adjoint
  each_pair([&](int64_t col, int64_t pix) { dpx_ref[pix] = dcols[col]; });
  auto ddy = up(dy);
  auto gW = up(gW0);
  auto gpx = poisoned<float>(npix);
  patch_embed_backward(ddy.p(), cols2.p(), dW.p(), C, s, gW.p(), gpx.p(), ctx());
  EXPECT_REL_ERR("dW (accumulated)", down(gW), gW_ref, kF32Tol);
  EXPECT_REL_ERR("dpixels", down(gpx), dpx_ref, kF32Tol);
}

}  // namespace
}  // namespace clipkit::cuda
