#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>
#include <limits>
#include <tuple>
#include <vector>

#include "core/parallel.h"
#include "core/profile.h"
#include "core/tensor.h"
#include "backend/cpu/dnnl_context.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/dropout.h"
#include "backend/flop_count.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {
namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

// The six attention matmuls of a training step, for all (batch, head) pairs at once, as strided
// batched oneDNN matmuls that read q, k, v in place from the [B, L, 3C] bf16 buffer:
//   forward   S = Q K^T            O = P V               (O written as bf16 into [B, L, C])
//   backward  dP = dO V^T          dV = P^T dO           dQ = dS K          dK = dS^T Q
struct Prims {
  Matmul qk, pv, dp, dv, dq, dk;
  dnnl::memory::desc head, head_t, scores_f32, scores, scores_t, ctx, grad;
};

Prims build_prims(int64_t B, int64_t L, int64_t H, int64_t D) {
  const int64_t C = H * D, C3 = 3 * C;
  Prims p;
  p.head = dnnl::memory::desc(dims{B, H, L, D}, dt::bf16, dims{L * C3, D, C3, 1});     // q, k or v
  p.head_t = dnnl::memory::desc(dims{B, H, D, L}, dt::bf16, dims{L * C3, D, 1, C3});   // k^T or v^T
  p.scores_f32 = dnnl::memory::desc(dims{B, H, L, L}, dt::f32, dims{H * L * L, L * L, L, 1});
  p.scores = dnnl::memory::desc(dims{B, H, L, L}, dt::bf16, dims{H * L * L, L * L, L, 1});
  p.scores_t = dnnl::memory::desc(dims{B, H, L, L}, dt::bf16, dims{H * L * L, L * L, 1, L});
  p.ctx = dnnl::memory::desc(dims{B, H, L, D}, dt::bf16, dims{L * C, D, C, 1});        // O or dO in [B, L, C]
  p.grad = dnnl::memory::desc(dims{B, H, L, D}, dt::f32, dims{L * C3, D, C3, 1});      // dq, dk or dv in [B, L, 3C]
  auto mm = [&](const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc& c) {
    return Matmul(a, b, c);
  };
  p.qk = mm(p.head, p.head_t, p.scores_f32);
  p.pv = mm(p.scores, p.head, p.ctx);
  p.dp = mm(p.ctx, p.head_t, p.scores_f32);
  p.dv = mm(p.scores_t, p.ctx, p.grad);
  p.dq = mm(p.scores, p.head, p.grad);
  p.dk = mm(p.scores_t, p.head, p.grad);
  return p;
}

Prims prims(int64_t B, int64_t L, int64_t H, int64_t D) {
  static PrimitiveCache<std::tuple<int64_t, int64_t, int64_t, int64_t>, Prims> cache(128);
  return cache.get({B, L, H, D}, [&] { return build_prims(B, L, H, D); });
}

// Row softmax of S * scale in place over probs with the masks applied (masked keys get exactly
// zero), and probs_b = bf16(P_d), P_d = P * keep / (1 - p) (kDrop; otherwise P_d = P).
template <bool kDrop>
void softmax_rows(float* probs, uint16_t* probs_b, const AttentionShape& s, bool causal, const int32_t* key_mask,
                  const DropoutMask& drop) {
  const int64_t B = s.B, L = s.L, H = s.H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for(B * H * L, [&](int64_t begin, int64_t end) {
    std::vector<float> pd(kDrop ? static_cast<size_t>(L) : 0);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (H * L), i = r % L;
      const int32_t* km = key_mask ? key_mask + b * L : nullptr;
      float* row = probs + r * L;
      uint16_t* rowb = probs_b + r * L;
      const int64_t jend = causal ? i + 1 : L;
      float mx = kNegInf;
      for (int64_t j = 0; j < jend; ++j) {
        row[j] = km && km[j] == 0 ? kNegInf : row[j] * scale;
        mx = std::max(mx, row[j]);
      }
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < jend; ++j) {
        const float e = row[j] == kNegInf ? 0.0f : exp_approx(row[j] - mx);
        row[j] = e;
        sum += e;
      }
      const float inv = sum > 0 ? 1.0f / sum : 0.0f;  // a fully masked row (never in CLIP) gives zeros
      if constexpr (kDrop) {
        float* d = pd.data();
#pragma omp simd
        for (int64_t j = 0; j < jend; ++j) row[j] *= inv;
        drop.apply(static_cast<uint64_t>(r * L), jend, row, d);  // P_d
#pragma omp simd
        for (int64_t j = 0; j < jend; ++j) rowb[j] = f32_to_bf16_simd(d[j]);
      } else {
        for (int64_t j = 0; j < jend; ++j) {
          row[j] *= inv;
          rowb[j] = f32_to_bf16(row[j]);
        }
      }
      for (int64_t j = jend; j < L; ++j) {
        row[j] = 0.0f;
        rowb[j] = 0;
      }
    }
  }, 16);
}

// From dP [B, H, L, L] (dO V^T): dS = scale * P (dP' - rowsum(dP' P)) in bf16, where
// dP' = dP * keep / (1 - p) (kDrop; otherwise dP' = dP).
template <bool kDrop>
void softmax_backward_rows(const float* probs, const float* dP, uint16_t* dS, const AttentionShape& s,
                           const DropoutMask& drop) {
  const int64_t L = s.L;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  parallel_for(s.B * s.H * L, [&](int64_t begin, int64_t end) {
    std::vector<float> dpd(kDrop ? static_cast<size_t>(L) : 0);
    for (int64_t r = begin; r < end; ++r) {
      const float* pr = probs + r * L;
      const float* dp = dP + r * L;
      uint16_t* ds = dS + r * L;
      if constexpr (kDrop) {  // dP' of this row, in a row buffer
        drop.apply(static_cast<uint64_t>(r * L), L, dp, dpd.data());
        dp = dpd.data();
      }
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < L; ++j) dot += pr[j] * dp[j];
      for (int64_t j = 0; j < L; ++j) ds[j] = f32_to_bf16(scale * pr[j] * (dp[j] - dot));
    }
  }, 16);
}

}  // namespace

void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b, const Dropout& drop) {
  ProfileScope prof("attention fwd bf16");
  const int64_t C = s.C();
  const Prims p = prims(s.B, s.L, s.H, s.D);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  count_flops(4 * s.B * s.H * s.L * s.L * s.D);
  p.qk.execute(qkv_b, qkv_b + C, probs);      // S = Q K^T
  if (drop.on()) softmax_rows<true>(probs, probs_b, s, causal, key_mask, mask);
  else softmax_rows<false>(probs, probs_b, s, causal, key_mask, mask);
  p.pv.execute(probs_b, qkv_b + 2 * C, out_b);  // O = P_d V
}

void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const AttentionShape& s, const Dropout& drop) {
  ProfileScope prof("attention bwd bf16");
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  const Prims p = prims(B, L, H, D);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  uint16_t* dout_b = Workspace::local().get_bf16(kDoutBf16, B * L * C);
  to_bf16(dout, dout_b, B * L * C);
  float* dP = Workspace::local().get(kDprobs, static_cast<size_t>(B * H * L * L));
  uint16_t* dS = Workspace::local().get_bf16(kDscoresBf16, B * H * L * L);
  count_flops(8 * B * H * L * L * D);
  p.dp.execute(dout_b, qkv_b + 2 * C, dP);  // dP_d = dO V^T
  if (drop.on()) softmax_backward_rows<true>(probs, dP, dS, s, mask);
  else softmax_backward_rows<false>(probs, dP, dS, s, mask);
  p.dv.execute(probs_b, dout_b, dqkv + 2 * C);  // dV = P_d^T dO
  p.dq.execute(dS, qkv_b + C, dqkv);            // dQ = dS K
  p.dk.execute(dS, qkv_b, dqkv + C);            // dK = dS^T Q
}

}  // namespace clipkit::backend::cpu
