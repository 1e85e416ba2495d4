// No FMA contraction of the separate multiplies and adds (GCC contracts intrinsics too): the
// 8-lane and 16-lane kernels then give the same bits (tests/backend/cpu/vector_isa_test.cpp).
#pragma GCC optimize("fp-contract=off")
#include "backend/cpu/quantize.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "core/profile.h"
#include "backend/cpu/vec_avx512.h"

namespace clipkit::backend::cpu {

namespace {

// Rows [b, e) 16 values at a time (AVX-512): the same operations as the 8-lane loop below, so the
// same bits (a NaN never becomes the maximum in either; the clamp maps it to -127 in both).
CLIPKIT_AVX512 void quantize_rows16(const float* x, int64_t C, int8_t* q, float* scale, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const float* xr = x + r * C;
    int8_t* qr = q + r * C;
    __m512 mx = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c += 16)
      mx = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(avx512::first_lanes(C - c), xr + c)), mx);
    const float amax = _mm512_reduce_max_ps(mx);
    scale[r] = amax > 0 ? amax / 127.0f : 1.0f;
    const __m512 vinv = avx512::set1(127.0f / (amax > 0 ? amax : 127.0f)), lo = avx512::set1(-127.0f),
                 hi = avx512::set1(127.0f);
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 m = avx512::first_lanes(C - c);
      const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), vinv), lo), hi);
      _mm512_mask_cvtsepi32_storeu_epi8(qr + c, m, _mm512_cvtps_epi32(v));
    }
  }
}

// The row's range [min(x, 0), max(x, 0)] -> scale, 1 / scale and the zero point (one code for
// both widths: the same bits).
struct RowRange {
  float scale, inv;
  int32_t zero;
};
RowRange u8_range(float lo, float hi) {
  const float range = hi - lo;
  if (!(range > 0)) return {1.0f, 1.0f, 0};  // an all-zero row (or one the NaN rule left empty)
  const float inv = 255.0f / range;
  return {range / 255.0f, inv, static_cast<int32_t>(std::clamp(std::nearbyint(-lo * inv), 0.0f, 255.0f))};
}

CLIPKIT_AVX512 void quantize_rows_u8_16(const float* x, int64_t C, uint8_t* q, float* scale, int32_t* zero, int64_t b,
                                        int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const float* xr = x + r * C;
    uint8_t* qr = q + r * C;
    __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();  // 0 is in every row's range
    for (int64_t c = 0; c < C; c += 16) {  // a NaN lane keeps the old value (second operand)
      const __m512 v = _mm512_maskz_loadu_ps(avx512::first_lanes(C - c), xr + c);
      mn = _mm512_min_ps(v, mn);
      mx = _mm512_max_ps(v, mx);
    }
    const RowRange rr = u8_range(_mm512_reduce_min_ps(mn), _mm512_reduce_max_ps(mx));
    scale[r] = rr.scale;
    zero[r] = rr.zero;
    const __m512 vinv = avx512::set1(rr.inv);
    const __m512i z = _mm512_set1_epi32(rr.zero), lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 m = avx512::first_lanes(C - c);
      const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), vinv)), z);
      _mm512_mask_cvtusepi32_storeu_epi8(qr + c, m, _mm512_min_epi32(_mm512_max_epi32(i, lo), hi));
    }
  }
}

// The 8-lane paths: pack16(src, dst) on each 16 values of a row of C, the last C % 16 through a
// zero-padded buffer (the same lanes, so the same bits as the 16-lane kernels' masked tails).
template <typename T, typename Pack16>
void each16(const float* xr, int64_t C, T* qr, Pack16&& pack16) {
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) pack16(xr + c, qr + c);
  if (c < C) {
    float buf[16] = {};
    T out[16];
    std::memcpy(buf, xr + c, static_cast<size_t>(C - c) * sizeof(float));
    pack16(buf, out);
    std::memcpy(qr + c, out, static_cast<size_t>(C - c) * sizeof(T));
  }
}

}  // namespace

void row_sums_s8(const int8_t* q, int64_t R, int64_t C, int32_t* sum) {
  parallel_for(R, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int8_t* qr = q + r * C;
      int32_t s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t c = 0; c < C; ++c) s += qr[c];
      sum[r] = s;
    }
  }, std::max<int64_t>(1, 65536 / std::max<int64_t>(C, 1)));
}

void quantize_rows_u8(const float* x, int64_t R, int64_t C, uint8_t* q, float* scale, int32_t* zero) {
  ProfileScope prof("quantize int8");
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  if (avx512::available())
    return parallel_for(R, [&](int64_t b, int64_t e) { quantize_rows_u8_16(x, C, q, scale, zero, b, e); }, grain);
  parallel_for(R, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * C;
      uint8_t* qr = q + r * C;
      __m256 mn = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
      auto range8 = [&](const float* src) {
        const __m256 v = _mm256_loadu_ps(src);
        mn = _mm256_min_ps(v, mn);
        mx = _mm256_max_ps(v, mx);
      };
      int64_t c = 0;
      for (; c + 8 <= C; c += 8) range8(xr + c);
      if (c < C) {  // the tail padded with zeros (in every row's range anyway)
        float buf[8] = {};
        std::memcpy(buf, xr + c, static_cast<size_t>(C - c) * sizeof(float));
        range8(buf);
      }
      float lo8[8], hi8[8];
      _mm256_storeu_ps(lo8, mn);
      _mm256_storeu_ps(hi8, mx);
      const RowRange rr = u8_range(*std::min_element(lo8, lo8 + 8), *std::max_element(hi8, hi8 + 8));
      scale[r] = rr.scale;
      zero[r] = rr.zero;
      const __m256 vinv = _mm256_set1_ps(rr.inv);
      const __m256i z = _mm256_set1_epi32(rr.zero), lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(255);
      auto pack16 = [&](const float* src, uint8_t* dst) {  // 16 values: round (to nearest even), shift, clamp, pack
        const __m256i a = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src), vinv)), z), lo), hi);
        const __m256i d = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src + 8), vinv)), z), lo), hi);
        const __m256i w16 = _mm256_packus_epi32(a, d);  // lanes a0 d0 a1 d1
        const __m128i w8 = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_shuffle_epi32(w8, _MM_SHUFFLE(3, 1, 2, 0)));
      };
      each16(xr, C, qr, pack16);
    }
  }, grain);
}

void quantize_rows_s8(const float* x, int64_t R, int64_t C, int8_t* q, float* scale) {
  ProfileScope prof("quantize int8");
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  if (avx512::available())
    return parallel_for(R, [&](int64_t b, int64_t e) { quantize_rows16(x, C, q, scale, b, e); }, grain);
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
      const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
      auto pack16 = [&](const float* src, int8_t* dst) {  // 16 values: round (to nearest even), clamp, pack to int8
        const __m256 a = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(src), vinv), lo), hi);
        const __m256 d = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(src + 8), vinv), lo), hi);
        const __m256i w16 = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(d));  // lanes a0 d0 a1 d1
        const __m128i w8 = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        // w8 holds a0..3 d0..3 a4..7 d4..7: put the 32-bit groups back in order
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_shuffle_epi32(w8, _MM_SHUFFLE(3, 1, 2, 0)));
      };
      each16(xr, C, qr, pack16);
    }
  }, grain);
}

}  // namespace clipkit::backend::cpu
