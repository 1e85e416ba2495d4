#include "ops/patch_embed.h"

#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/dense.h"

namespace clipkit::ops {

void im2col_patches(const float* pixels, const PatchShape& s, float* cols) {
  const int64_t G = s.G(), NP = G * G, K = s.K(), P = s.P, S = s.S, CH = s.CH;
  parallel_for(s.patches(), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / NP, py = (r % NP) / G, px = r % G;
      float* dst = cols + r * K;
      for (int64_t c = 0; c < CH; ++c)
        for (int64_t ky = 0; ky < P; ++ky)
          std::memcpy(dst + (c * P + ky) * P, pixels + ((n * CH + c) * S + py * P + ky) * S + px * P, sizeof(float) * P);
    }
  }, 16);
}

void col2im_patches(const float* dcols, const PatchShape& s, float* dpixels) {
  const int64_t G = s.G(), NP = G * G, K = s.K(), P = s.P, S = s.S, CH = s.CH;
  std::memset(dpixels, 0, sizeof(float) * s.N * CH * S * S);  // pixels outside the patch grid (S % P) get 0
  parallel_for(s.patches(), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / NP, py = (r % NP) / G, px = r % G;
      const float* src = dcols + r * K;
      for (int64_t c = 0; c < CH; ++c)
        for (int64_t ky = 0; ky < P; ++ky)
          std::memcpy(dpixels + ((n * CH + c) * S + py * P + ky) * S + px * P, src + (c * P + ky) * P, sizeof(float) * P);
    }
  }, 16);
}

void patch_embed_forward(const float* pixels, const float* W, int64_t C, const PatchShape& s, float* cols, float* y,
                         Precision p) {
  im2col_patches(pixels, s, cols);
  dense_forward(cols, W, nullptr, s.patches(), C, s.K(), y, p);
}

void patch_embed_backward(const float* dy, const float* cols, const float* W, int64_t C, const PatchShape& s, float* dW,
                          float* dpixels, Precision p) {
  if (!dpixels) {
    dense_backward(cols, W, dy, s.patches(), C, s.K(), nullptr, dW, nullptr, p);
    return;
  }
  std::vector<float> dcols(static_cast<size_t>(s.patches() * s.K()));
  dense_backward(cols, W, dy, s.patches(), C, s.K(), dcols.data(), dW, nullptr, p);
  col2im_patches(dcols.data(), s, dpixels);
}

}  // namespace clipkit::ops
