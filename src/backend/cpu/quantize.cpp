#include "backend/cpu/quantize.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::backend::cpu {

void quantize_rows_s8(const float* x, int64_t R, int64_t C, int8_t* q, float* scale) {
  ProfileScope prof("quantize int8");
  parallel_for(R, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * C;
      int8_t* qr = q + r * C;
      float amax = 0;
#pragma omp simd reduction(max : amax)
      for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(xr[c]));
      const float s = amax > 0 ? amax / 127.0f : 1.0f;
      const float inv = 127.0f / (amax > 0 ? amax : 127.0f);
      scale[r] = s;
      int64_t c = 0;
      const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
      for (; c + 16 <= C; c += 16) {  // 16 values: round (to nearest even), clamp, pack to int8
        const __m256 a = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + c), vinv), lo), hi);
        const __m256 d = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + c + 8), vinv), lo), hi);
        const __m256i w16 = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(d));  // lanes a0 d0 a1 d1
        const __m128i w8 = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        // w8 holds a0..3 d0..3 a4..7 d4..7: put the 32-bit groups back in order
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + c), _mm_shuffle_epi32(w8, _MM_SHUFFLE(3, 1, 2, 0)));
      }
      for (; c < C; ++c)
        qr[c] = static_cast<int8_t>(std::clamp(std::nearbyint(xr[c] * inv), -127.0f, 127.0f));
    }
  }, std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)));
}

}  // namespace clipkit::backend::cpu
