#include <cmath>

#include "backend/cuda/normalize.h"
#include "cuda_test_util.h"
#include "image/preprocess.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaNormalize : public CudaTest {};

TEST_F(CudaNormalize, L2RowsAsTheModelsNormalization) {
  const int64_t N = 13, D = 768;
  std::vector<float> x = random_vec(static_cast<size_t>(N * D), 91, 3.0f);
  for (int64_t d = 0; d < D; ++d) x[5 * D + d] = 0.0f;  // a zero row stays zero
  std::vector<float> ref(x);
  for (int64_t n = 0; n < N; ++n) {  // model::l2_normalize_rows
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += static_cast<double>(ref[n * D + d]) * ref[n * D + d];
    const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
    for (int64_t d = 0; d < D; ++d) ref[n * D + d] *= inv;
  }
  auto dx = up(x);
  l2_normalize_rows(dx.p(), N, D, ctx());
  EXPECT_REL_ERR("normalized rows", down(dx), ref, 1e-7);
}

TEST_F(CudaNormalize, ImagesAreImagePreprocessBitForBit) {
  const int64_t N = 3, H = 61, W = 64;
  std::vector<uint8_t> hwc(static_cast<size_t>(N * H * W * 3));
  std::mt19937 g(92);
  for (auto& v : hwc) v = static_cast<uint8_t>(g());
  const image::PreprocessConfig cfg = image::PreprocessConfig::clip_default(64);
  float lut[3][256];
  image::normalize_lut(cfg, lut);
  std::vector<float> want(static_cast<size_t>(N * 3 * H * W));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < H * W; ++p)
      for (int c = 0; c < 3; ++c) want[(n * 3 + c) * H * W + p] = lut[c][hwc[(n * H * W + p) * 3 + c]];
  auto dh = up(hwc);
  auto out = poisoned<float>(N * 3 * H * W);
  normalize_images(dh.p(), N, H, W, lut, out.p(), ctx());
  EXPECT_EQ(down(out), want);
  auto outb = poisoned<uint16_t>(N * 3 * H * W);
  normalize_images_bf16(dh.p(), N, H, W, lut, outb.p(), ctx());
  EXPECT_EQ(down(outb), to_bf16_host(want));
}

}  // namespace
}  // namespace clipkit::cuda
