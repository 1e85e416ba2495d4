// AVX2/FMA (x86-64-v3, the project's baseline ISA) float math, 8 lanes at a time, for loops GCC
// does not vectorize on its own: exp (vec_math.h's exp_approx), erfc, sigmoid, the normal CDF, bf16 stores.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace clipkit::backend::cpu::avx2 {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }

// exp_approx, 8 lanes
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, set1(-87.0f)), set1(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set1(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, set1(1.42860682030941723212e-6f), r);
  __m256 p = set1(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, set1(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, set1(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, set1(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, set1(0.5f));
  p = _mm256_fmadd_ps(p, r, set1(1.0f));
  p = _mm256_fmadd_ps(p, r, set1(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// erfc_abs_approx, 8 lanes
inline __m256 erfc_abs8(__m256 x) {
  const __m256 z = _mm256_andnot_ps(set1(-0.0f), x);
  const __m256 t = _mm256_div_ps(set1(1.0f), _mm256_fmadd_ps(set1(0.5f), z, set1(1.0f)));
  __m256 p = set1(0.17087277f);
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                  1.00002368f, -1.26551223f})
    p = _mm256_fmadd_ps(p, t, set1(c));
  return _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
}

// 1 / (1 + e^-x)
inline __m256 sigmoid8(__m256 x) {
  return _mm256_div_ps(set1(1.0f), _mm256_add_ps(set1(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Phi(x) = 0.5 (1 + erf(x / sqrt 2))
inline __m256 normal_cdf8(__m256 x) {
  const __m256 h = _mm256_mul_ps(set1(0.5f), erfc_abs8(_mm256_mul_ps(x, set1(0.7071067811865476f))));
  return _mm256_blendv_ps(_mm256_sub_ps(set1(1.0f), h), h, x);  // sign bit of x picks h
}

// x rounded to bf16 (nearest even; NaN stays NaN): the bits in the low half of each 32-bit lane.
inline __m256i bf16_bits8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}

// Stores bf16(x) for 8 lanes.
inline void store_bf16x8(uint16_t* y, __m256 x) {
  const __m256i r = bf16_bits8(x);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y), _mm256_castsi256_si128(packed));
}

// x rounded to bf16 and widened back to fp32: the values a bf16 product reads.
inline __m256 round_bf16x8(__m256 x) { return _mm256_castsi256_ps(_mm256_slli_epi32(bf16_bits8(x), 16)); }

}  // namespace clipkit::backend::cpu::avx2
