#include "backend/cpu/im2col.h"

#include <cstring>

#include "core/parallel.h"

namespace clipkit::backend::cpu {

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

}  // namespace clipkit::backend::cpu
