#include "backend/cpu/bf16_rate.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace clipkit::backend::cpu {
namespace {

using clk = std::chrono::steady_clock;
constexpr long kIters = 4096;  // x 12 independent instructions per loop

// Seconds for kIters x 12 independent zmm fp32 FMAs (Bf16 = false) or vdpbf16ps (true); 12 chains
// hide the latency of either. Only called where the CPU has AVX512_BF16.
#define CLIPKIT_R12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
template <bool Bf16>
__attribute__((target("avx512f,avx512bf16"))) double time_loop(float seed) {
  const __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0.5f);
  const __m512bh xb = (__m512bh)_mm512_set1_epi32(0x3f803f80);  // (1.0, 1.0) bf16 pairs
#define CLIPKIT_DECL(k) __m512 a##k = _mm512_set1_ps(seed + k);
  CLIPKIT_R12(CLIPKIT_DECL)
  const auto t0 = clk::now();
  for (long i = 0; i < kIters; ++i) {
#define CLIPKIT_OP(k) a##k = Bf16 ? _mm512_dpbf16_ps(a##k, xb, xb) : _mm512_fmadd_ps(x, y, a##k);
    CLIPKIT_R12(CLIPKIT_OP)
    asm volatile("" ::: "memory");
  }
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  volatile float sink = 0;
#define CLIPKIT_SINK(k) sink = sink + _mm512_cvtss_f32(a##k);
  CLIPKIT_R12(CLIPKIT_SINK)
  return s;
}
#undef CLIPKIT_R12
#undef CLIPKIT_DECL
#undef CLIPKIT_OP
#undef CLIPKIT_SINK

}  // namespace

double bf16_dot_rate_vs_fp32() {
  static const double ratio = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) return 0.0;
    double fma = 1e30, dp = 1e30;
    for (int trial = 0; trial < 9; ++trial) {  // alternating, best of each: other work only slows a loop
      fma = std::min(fma, time_loop<false>(static_cast<float>(trial)));
      dp = std::min(dp, time_loop<true>(static_cast<float>(trial)));
    }
    // per instruction: vdpbf16ps 2 x 16 multiply-adds, an fp32 FMA 16
    return dp > 0 ? 2.0 * fma / dp : 0.0;
  }();
  return ratio;
}

}  // namespace clipkit::backend::cpu
