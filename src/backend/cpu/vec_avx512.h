// AVX-512F float math, 16 lanes at a time: vec_avx2.h's functions (exp, erfc, sigmoid, the normal
// CDF, the activations, bf16 stores) with the same operations in the same order, so lane for lane
// the same results as the 8-lane code. Functions are compiled for AVX-512F by attribute
// (CLIPKIT_AVX512: the rest of the project targets x86-64-v3) and called only where
// avx512::available().
#pragma once
#include <immintrin.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "backend/backend.h"

// GCC 12 flags the _mm512_undefined_* operands inside its own AVX-512 intrinsics ("may be used
// uninitialized") where they are inlined into functions compiled for avx512f by attribute; this
// applies to the rest of the including file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define CLIPKIT_AVX512 __attribute__((target("avx512f")))

namespace clipkit::backend::cpu::avx512 {

// Tests turn the 16-lane kernels off to compare them with the 8-lane ones.
inline std::atomic<bool> disabled_for_testing{false};

// This CPU runs AVX-512F (checked once), and the 16-lane kernels are on.
inline bool available() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes && !disabled_for_testing.load(std::memory_order_relaxed);
}

CLIPKIT_AVX512 inline __m512 set1(float v) { return _mm512_set1_ps(v); }

// exp_approx (vec_math.h), 16 lanes
CLIPKIT_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, set1(-87.0f)), set1(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, set1(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, set1(1.42860682030941723212e-6f), r);
  __m512 p = set1(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, set1(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, set1(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, set1(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, set1(0.5f));
  p = _mm512_fmadd_ps(p, r, set1(1.0f));
  p = _mm512_fmadd_ps(p, r, set1(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// erfc_abs_approx, 16 lanes
CLIPKIT_AVX512 inline __m512 erfc_abs16(__m512 x) {
  const __m512 z = _mm512_abs_ps(x);
  const __m512 t = _mm512_div_ps(set1(1.0f), _mm512_fmadd_ps(set1(0.5f), z, set1(1.0f)));
  __m512 p = set1(0.17087277f);
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                  1.00002368f, -1.26551223f})
    p = _mm512_fmadd_ps(p, t, set1(c));
  return _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, p)));
}

// 1 / (1 + e^-x)
CLIPKIT_AVX512 inline __m512 sigmoid16(__m512 x) {
  return _mm512_div_ps(set1(1.0f), _mm512_add_ps(set1(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// Phi(x) = 0.5 (1 + erf(x / sqrt 2))
CLIPKIT_AVX512 inline __m512 normal_cdf16(__m512 x) {
  const __m512 h = _mm512_mul_ps(set1(0.5f), erfc_abs16(_mm512_mul_ps(x, set1(0.7071067811865476f))));
  const __mmask16 neg = _mm512_cmplt_epi32_mask(_mm512_castps_si512(x), _mm512_setzero_si512());  // sign bit
  return _mm512_mask_blend_ps(neg, _mm512_sub_ps(set1(1.0f), h), h);
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// act(x) (activation.cpp's act8)
template <Act A>
CLIPKIT_AVX512 inline __m512 act16(__m512 v) {
  if constexpr (A == Act::QuickGelu) {
    return _mm512_mul_ps(v, sigmoid16(_mm512_mul_ps(set1(1.702f), v)));
  } else if constexpr (A == Act::Gelu) {
    return _mm512_mul_ps(v, normal_cdf16(v));
  } else if constexpr (A == Act::GeluNew) {
    const __m512 u = _mm512_mul_ps(set1(kSqrt2OverPi), _mm512_fmadd_ps(_mm512_mul_ps(set1(0.044715f), v),
                                                                        _mm512_mul_ps(v, v), v));
    return _mm512_mul_ps(v, sigmoid16(_mm512_add_ps(u, u)));
  } else if constexpr (A == Act::Relu) {
    return _mm512_max_ps(v, _mm512_setzero_ps());
  } else if constexpr (A == Act::Tanh) {
    return _mm512_sub_ps(_mm512_mul_ps(set1(2.0f), sigmoid16(_mm512_add_ps(v, v))), set1(1.0f));
  } else {
    return v;
  }
}

// act'(x) (activation.cpp's grad8)
template <Act A>
CLIPKIT_AVX512 inline __m512 grad16(__m512 v) {
  if constexpr (A == Act::QuickGelu) {
    const __m512 s = sigmoid16(_mm512_mul_ps(set1(1.702f), v));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(set1(1.702f), v), s), _mm512_sub_ps(set1(1.0f), s), s);
  } else if constexpr (A == Act::Gelu) {
    const __m512 pdf = _mm512_mul_ps(exp16(_mm512_mul_ps(set1(-0.5f), _mm512_mul_ps(v, v))), set1(kInvSqrt2Pi));
    return _mm512_fmadd_ps(v, pdf, normal_cdf16(v));
  } else if constexpr (A == Act::GeluNew) {
    const __m512 v2 = _mm512_mul_ps(v, v);
    const __m512 u = _mm512_mul_ps(set1(kSqrt2OverPi), _mm512_fmadd_ps(_mm512_mul_ps(set1(0.044715f), v), v2, v));
    const __m512 s = sigmoid16(_mm512_add_ps(u, u));
    const __m512 sech2 = _mm512_mul_ps(_mm512_mul_ps(set1(4.0f), s), _mm512_sub_ps(set1(1.0f), s));
    const __m512 du = _mm512_mul_ps(set1(kSqrt2OverPi), _mm512_fmadd_ps(set1(3.0f * 0.044715f), v2, set1(1.0f)));
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(set1(0.5f), v), sech2), du, s);
  } else if constexpr (A == Act::Relu) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), set1(1.0f));
  } else if constexpr (A == Act::Tanh) {
    const __m512 s = sigmoid16(_mm512_add_ps(v, v));
    return _mm512_mul_ps(_mm512_mul_ps(set1(4.0f), s), _mm512_sub_ps(set1(1.0f), s));
  } else {
    return set1(1.0f);
  }
}

// bf16(x) (round to nearest even, NaN stays NaN) of the lanes in `m`, stored to y.
CLIPKIT_AVX512 inline void store_bf16x16(uint16_t* y, __m512 x, __mmask16 m = 0xFFFF) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, nan);
  _mm512_mask_cvtepi32_storeu_epi16(y, m, r);
}

// first, first + 1, ..., first + 15 (the element indices of a 16-lane block).
CLIPKIT_AVX512 inline __m512i lane_indices(int64_t first) {
  return _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                          _mm512_set1_epi32(static_cast<int>(first)));
}

// The lanes [0, n) of 16 (n <= 16), for loads and stores of a row's tail.
CLIPKIT_AVX512 inline __mmask16 first_lanes(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
}

// f(Act constant) for the runtime activation a: one instantiation per activation, so the inner
// loops carry no switch.
template <typename F>
decltype(auto) with_act(Act a, F&& f) {
  switch (a) {
    case Act::QuickGelu: return f(std::integral_constant<Act, Act::QuickGelu>{});
    case Act::Gelu: return f(std::integral_constant<Act, Act::Gelu>{});
    case Act::GeluNew: return f(std::integral_constant<Act, Act::GeluNew>{});
    case Act::Relu: return f(std::integral_constant<Act, Act::Relu>{});
    case Act::Tanh: return f(std::integral_constant<Act, Act::Tanh>{});
    case Act::None: break;
  }
  return f(std::integral_constant<Act, Act::None>{});
}

}  // namespace clipkit::backend::cpu::avx512
