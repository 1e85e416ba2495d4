// Branch-free float math that GCC vectorizes inside `#pragma omp simd` loops.
#pragma once
#include <cstdint>
#include <cstring>

namespace clipkit::ops {

// exp(x) for x <= 0 ranges used by softmax (also fine for |x| < 87): Cody-Waite range reduction
// x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r; max rel error ~2 ulp.
#pragma omp declare simd notinbranch
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
#if defined(__clang__) && __clang_major__ < 16  // (no __builtin_roundevenf; rint rounds half to even by default)
  const float n = __builtin_rintf(x * 1.44269504088896341f);
#else
  const float n = __builtin_roundevenf(x * 1.44269504088896341f);
#endif
  float r = x - n * 0.693145751953125f;
  r -= n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return p * scale;
}

// fp32 -> bf16 bits, round to nearest even (NaN stays NaN), branch-free for `omp simd` loops.
#pragma omp declare simd notinbranch
inline uint16_t f32_to_bf16_simd(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
}

}  // namespace clipkit::ops
