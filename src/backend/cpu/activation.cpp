// The activations and their gradients, 8 or (AVX-512) 16 lanes at a time (vec_avx2.h's and
// vec_avx512.h's exp/sigmoid/normal cdf, the same bits either way:
// a few 1e-7 relative error, about libm's, and far below bf16's 4e-3 rounding step and int8's
// quantization), for every path that does not fuse them into a oneDNN matmul: fp32 and bf16
// training (the bf16 forward writes bf16: it only feeds the next matmul) and the int8 inference
// epilogue, which dequantizes the integer product first.
// No FMA contraction of the separate multiplies and adds (GCC contracts intrinsics too): the
// 8-lane and 16-lane kernels then give the same bits (tests/backend/cpu/vector_isa_test.cpp).
#pragma GCC optimize("fp-contract=off")
#include "backend/cpu/activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "core/profile.h"
#include "core/tensor.h"
#include "backend/cpu/vec_avx2.h"
#include "backend/cpu/vec_avx512.h"

namespace clipkit::backend::cpu {
namespace {

using namespace avx2;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// act(x) and act'(x) for 8 lanes
__m256 act8(__m256 v, Act a) {
  switch (a) {
    case Act::QuickGelu: return _mm256_mul_ps(v, sigmoid8(_mm256_mul_ps(set1(1.702f), v)));
    case Act::Gelu: return _mm256_mul_ps(v, normal_cdf8(v));
    case Act::GeluNew: {  // 0.5 v (1 + tanh u) = v sigmoid(2u), without cancellation for v < 0
      const __m256 u = _mm256_mul_ps(set1(kSqrt2OverPi), _mm256_fmadd_ps(_mm256_mul_ps(set1(0.044715f), v),
                                                                          _mm256_mul_ps(v, v), v));
      return _mm256_mul_ps(v, sigmoid8(_mm256_add_ps(u, u)));
    }
    case Act::Relu: return _mm256_max_ps(v, _mm256_setzero_ps());
    case Act::Tanh: return _mm256_sub_ps(_mm256_mul_ps(set1(2.0f), sigmoid8(_mm256_add_ps(v, v))), set1(1.0f));
    case Act::None: return v;
  }
  return v;
}

__m256 grad8(__m256 v, Act a) {
  switch (a) {
    case Act::QuickGelu: {  // s + 1.702 v s (1 - s)
      const __m256 s = sigmoid8(_mm256_mul_ps(set1(1.702f), v));
      return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(set1(1.702f), v), s), _mm256_sub_ps(set1(1.0f), s), s);
    }
    case Act::Gelu: {  // Phi(v) + v phi(v)
      const __m256 pdf = _mm256_mul_ps(exp8(_mm256_mul_ps(set1(-0.5f), _mm256_mul_ps(v, v))), set1(kInvSqrt2Pi));
      return _mm256_fmadd_ps(v, pdf, normal_cdf8(v));
    }
    case Act::GeluNew: {  // with s = sigmoid(2u): 0.5 (1 + tanh u) = s, 1 - tanh^2 u = 4 s (1 - s)
      const __m256 v2 = _mm256_mul_ps(v, v);
      const __m256 u = _mm256_mul_ps(set1(kSqrt2OverPi), _mm256_fmadd_ps(_mm256_mul_ps(set1(0.044715f), v), v2, v));
      const __m256 s = sigmoid8(_mm256_add_ps(u, u));
      const __m256 sech2 = _mm256_mul_ps(_mm256_mul_ps(set1(4.0f), s), _mm256_sub_ps(set1(1.0f), s));
      const __m256 du = _mm256_mul_ps(set1(kSqrt2OverPi), _mm256_fmadd_ps(set1(3.0f * 0.044715f), v2, set1(1.0f)));
      return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(set1(0.5f), v), sech2), du, s);
    }
    case Act::Relu: return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), set1(1.0f));
    case Act::Tanh: {  // 1 - tanh^2 = 4 s (1 - s), s = sigmoid(2v)
      const __m256 s = sigmoid8(_mm256_add_ps(v, v));
      return _mm256_mul_ps(_mm256_mul_ps(set1(4.0f), s), _mm256_sub_ps(set1(1.0f), s));
    }
    case Act::None: return set1(1.0f);
  }
  return v;
}

// the same for one value (loop tails)
float act1(float v, Act a) {
  float buf[8] = {v}, out[8];
  _mm256_storeu_ps(out, act8(_mm256_loadu_ps(buf), a));
  return out[0];
}
float grad1(float v, Act a) {
  float buf[8] = {v}, out[8];
  _mm256_storeu_ps(out, grad8(_mm256_loadu_ps(buf), a));
  return out[0];
}

// [0, n) across the compute threads, 8 elements at a time (lanes8(i)), the last n % 8 one at a time
// (one(i))
template <typename Lanes8, typename One>
void for_each8(int64_t n, Lanes8&& lanes8, One&& one) {
  parallel_for((n + 7) / 8, [&](int64_t b, int64_t e) {
    const int64_t hi = std::min(n, e * 8);
    int64_t i = b * 8;
    for (; i + 8 <= hi; i += 8) lanes8(i);
    for (; i < hi; ++i) one(i);
  }, 512);
}

// The same kernels 16 lanes at a time where the CPU runs AVX-512 (vec_avx512.h: lane for lane the
// same bits), one instantiation per activation, row tails through lane masks.
constexpr int64_t kGrain16 = 4096;  // elements per parallel_for task

template <Act A>
CLIPKIT_AVX512 void forward16(const float* x, float* y, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = avx512::first_lanes(e - i);
    _mm512_mask_storeu_ps(y + i, m, avx512::act16<A>(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

template <Act A>
CLIPKIT_AVX512 void backward16(const float* x, const float* dy, float* dx, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = avx512::first_lanes(e - i);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i),
                                                   avx512::grad16<A>(_mm512_maskz_loadu_ps(m, x + i))));
  }
}

template <Act A>
CLIPKIT_AVX512 void forward_bf16_16(const float* x, uint16_t* y, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = avx512::first_lanes(e - i);
    avx512::store_bf16x16(y + i, avx512::act16<A>(_mm512_maskz_loadu_ps(m, x + i)), m);
  }
}

template <Act A>
CLIPKIT_AVX512 void dequant_rows16(const int32_t* acc, const float* row_scale, const int32_t* row_zero,
                                   const float* col_scale, const int32_t* col_sum, const float* bias, int64_t N,
                                   float* y, bool accumulate, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int32_t* ar = acc + r * N;
    float* yr = y + r * N;
    const __m512 rs = avx512::set1(row_scale[r]);
    const __m512i zp = _mm512_set1_epi32(row_zero[r]);
    for (int64_t n = 0; n < N; n += 16) {
      const __mmask16 m = avx512::first_lanes(N - n);
      const __m512i q = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, ar + n),
                                         _mm512_mullo_epi32(zp, _mm512_maskz_loadu_epi32(m, col_sum + n)));
      __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), rs), _mm512_maskz_loadu_ps(m, col_scale + n));
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + n));
      v = avx512::act16<A>(v);
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yr + n));
      _mm512_mask_storeu_ps(yr + n, m, v);
    }
  }
}

}  // namespace

void act_forward(const float* x, float* y, int64_t n, Act a) {
  ProfileScope prof("act fwd");
  if (a == Act::Tanh) {  // 2 sigmoid(2x) - 1 cancels near 0 (1e-5 relative); only poolers use tanh: a row per sample
    for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
    return;
  }
  if (avx512::available())
    return avx512::with_act(a, [&](auto A) {
      parallel_for(n, [&](int64_t b, int64_t e) { forward16<decltype(A)::value>(x, y, b, e); }, kGrain16);
    });
  for_each8(n, [&](int64_t i) { _mm256_storeu_ps(y + i, act8(_mm256_loadu_ps(x + i), a)); },
            [&](int64_t i) { y[i] = act1(x[i], a); });
}

// Split at multiples of 8 elements, kGrain16 at a time: every chunk but the last is whole 8-lane
// groups, so each element gets the lanes it gets in one serial pass.
void act_backward(const float* x, const float* dy, float* dx, int64_t n, Act a) {
  ProfileScope prof("act bwd");
  parallel_for((n + 7) / 8, [&](int64_t b, int64_t e) {
    const int64_t lo = b * 8, hi = std::min(n, e * 8);
    act_backward_serial(x + lo, dy + lo, dx + lo, hi - lo, a);
  }, kGrain16 / 8);
}

void act_backward_serial(const float* x, const float* dy, float* dx, int64_t n, Act a) {
  if (avx512::available())
    return avx512::with_act(a, [&](auto A) { backward16<decltype(A)::value>(x, dy, dx, 0, n); });
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), grad8(_mm256_loadu_ps(x + i), a)));
  for (; i < n; ++i) dx[i] = dy[i] * grad1(x[i], a);
}

void act_forward_bf16(const float* x, uint16_t* y, int64_t n, Act a) {
  ProfileScope prof("act fwd bf16");
  if (avx512::available())
    return avx512::with_act(a, [&](auto A) {
      parallel_for(n, [&](int64_t b, int64_t e) { forward_bf16_16<decltype(A)::value>(x, y, b, e); }, kGrain16);
    });
  for_each8(n, [&](int64_t i) { store_bf16x8(y + i, act8(_mm256_loadu_ps(x + i), a)); },
            [&](int64_t i) { y[i] = f32_to_bf16(act1(x[i], a)); });
}

void act_forward_dequant(const int32_t* acc, const float* row_scale, const int32_t* row_zero, const float* col_scale,
                         const int32_t* col_sum, const float* bias, int64_t M, int64_t N, float* y, Act a,
                         bool accumulate) {
  ProfileScope prof("dequantize int8");
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1));
  if (avx512::available())
    return avx512::with_act(a, [&](auto A) {
      parallel_for(M, [&](int64_t b, int64_t e) {
        dequant_rows16<decltype(A)::value>(acc, row_scale, row_zero, col_scale, col_sum, bias, N, y, accumulate, b, e);
      }, grain);
    });
  parallel_for(M, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const int32_t* am = acc + m * N;
      float* ym = y + m * N;
      const __m256 rs = set1(row_scale[m]);
      const __m256i zp = _mm256_set1_epi32(row_zero[m]);
      auto value8 = [&](const int32_t* av, const int32_t* sv, const float* cv, const float* bv, const float* yv) {
        const __m256i q = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(av)),
                                           _mm256_mullo_epi32(zp, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sv))));
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), rs), _mm256_loadu_ps(cv));
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bv));
        v = act8(v, a);
        return accumulate ? _mm256_add_ps(v, _mm256_loadu_ps(yv)) : v;
      };
      int64_t n = 0;
      for (; n + 8 <= N; n += 8)
        _mm256_storeu_ps(ym + n, value8(am + n, col_sum + n, col_scale + n, bias ? bias + n : nullptr, ym + n));
      if (n < N) {  // the tail through the same lanes (the same bits as the 16-lane kernel)
        int32_t av[8] = {}, sv[8] = {};
        float cv[8] = {}, bv[8] = {}, yv[8] = {};
        const size_t k = static_cast<size_t>(N - n);
        std::memcpy(av, am + n, k * sizeof(int32_t));
        std::memcpy(sv, col_sum + n, k * sizeof(int32_t));
        std::memcpy(cv, col_scale + n, k * sizeof(float));
        if (bias) std::memcpy(bv, bias + n, k * sizeof(float));
        if (accumulate) std::memcpy(yv, ym + n, k * sizeof(float));
        _mm256_storeu_ps(yv, value8(av, sv, cv, bv, yv));
        std::memcpy(ym + n, yv, k * sizeof(float));
      }
    }
  }, grain);
}

}  // namespace clipkit::backend::cpu
