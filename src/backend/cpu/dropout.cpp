#include "backend/cpu/dropout.h"

#include <immintrin.h>

#include "core/error.h"

namespace clipkit::backend::cpu {
namespace {

// a * c mod 2^64 in each 64-bit lane (AVX2 has no 64-bit multiply: three 32x32->64 products)
inline __m256i mul64(__m256i a, __m256i c_lo, __m256i c_hi) {
  const __m256i lo = _mm256_mul_epu32(a, c_lo);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(a, c_hi), _mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_lo));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

inline __m256i xorshift(__m256i z, int s) { return _mm256_xor_si256(z, _mm256_srli_epi64(z, s)); }

// dropout_bits for the 4 elements whose splitmix64 counters are in z, in the low 32 bits of each lane
inline __m256i bits4(__m256i z) {
  const __m256i m1_lo = _mm256_set1_epi64x(0x1CE4E5B9ll), m1_hi = _mm256_set1_epi64x(0xBF58476Dll);
  const __m256i m2_lo = _mm256_set1_epi64x(0x133111EBll), m2_hi = _mm256_set1_epi64x(0x94D049BBll);
  z = mul64(xorshift(z, 30), m1_lo, m1_hi);
  z = mul64(xorshift(z, 27), m2_lo, m2_hi);
  return _mm256_srli_epi64(z, 40);  // the final z ^= z >> 31 leaves bits 40..63 unchanged
}

// Calls out(j, dropped) for j = 0, 8, 16, ... < n - 7 with the 8 lanes' dropped mask (all ones =
// dropped) of elements i0 + j .. i0 + j + 7; returns where the scalar tail starts.
template <typename Out>
int64_t for_each8(uint64_t stream, uint64_t i0, int64_t n, float p, Out out) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  // u < p  <=>  bits < p * 2^24 (both sides exact in float)
  const __m256 thresh = _mm256_set1_ps(p * 16777216.0f);
  // lanes of `even` count elements j, j+2, j+4, j+6; `odd` j+1, j+3, ...: packing odd into the high
  // halves of even's lanes puts the 8 results in element order
  const uint64_t b = stream + i0 * kGolden;
  __m256i even = _mm256_setr_epi64x(static_cast<long long>(b), static_cast<long long>(b + 2 * kGolden),
                                    static_cast<long long>(b + 4 * kGolden), static_cast<long long>(b + 6 * kGolden));
  __m256i odd = _mm256_add_epi64(even, _mm256_set1_epi64x(static_cast<long long>(kGolden)));
  const __m256i step = _mm256_set1_epi64x(static_cast<long long>(8 * kGolden));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i bits = _mm256_or_si256(bits4(even), _mm256_slli_epi64(bits4(odd), 32));
    out(j, _mm256_cmp_ps(_mm256_cvtepi32_ps(bits), thresh, _CMP_LT_OQ));
    even = _mm256_add_epi64(even, step);
    odd = _mm256_add_epi64(odd, step);
  }
  return j;
}

}  // namespace

void dropout_scales(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, float* s) {
  const __m256 keep = _mm256_set1_ps(keep_scale);
  int64_t j = for_each8(stream, i0, n, p, [&](int64_t j8, __m256 dropped) {
    _mm256_storeu_ps(s + j8, _mm256_andnot_ps(dropped, keep));
  });
  for (; j < n; ++j) s[j] = dropout_dropped(stream, i0 + static_cast<uint64_t>(j), p) ? 0.0f : keep_scale;
}

void dropout_mask_apply(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, const float* x, float* y) {
  const __m256 keep = _mm256_set1_ps(keep_scale);
  int64_t j = for_each8(stream, i0, n, p, [&](int64_t j8, __m256 dropped) {
    _mm256_storeu_ps(y + j8, _mm256_andnot_ps(dropped, _mm256_mul_ps(_mm256_loadu_ps(x + j8), keep)));
  });
  for (; j < n; ++j) y[j] = dropout_dropped(stream, i0 + static_cast<uint64_t>(j), p) ? 0.0f : x[j] * keep_scale;
}

DropoutMask::DropoutMask(float prob, uint64_t seed, uint64_t site)
    : p(prob), keep_scale(prob < 1 ? 1.0f / (1.0f - prob) : 0.0f), stream(dropout_stream(seed, site)) {
  if (!(prob >= 0 && prob <= 1)) fail("dropout probability must be in [0, 1], got {}", prob);
}

}  // namespace clipkit::backend::cpu
