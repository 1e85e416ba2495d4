// Attention in training passes, fp32 and bf16 alike: the six attention products as strided batched
// oneDNN matmuls over all (batch, head) pairs (reading q, k, v in place), the softmax and its
// backward in fp32 row kernels between them. bf16 runs the products on bf16 operands with fp32
// accumulation; fp32 on the fp32 values. (Inference runs attention.cpp's two-product kernel.)
#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>
#include <limits>
#include <tuple>
#include <type_traits>
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
// batched oneDNN matmuls that read q, k, v in place from the [B, L, 3C] operand buffer (op: bf16
// or f32):
//   forward   S = Q K^T            O = P V               (O written into [B, L, C])
//   backward  dP = dO V^T          dV = P^T dO           dQ = dS K          dK = dS^T Q
struct Prims {
  Matmul qk, pv, dp, dv, dq, dk;
};

Prims build_prims(int64_t B, int64_t L, int64_t H, int64_t D, dt op) {
  const int64_t C = H * D, C3 = 3 * C;
  const dnnl::memory::desc head(dims{B, H, L, D}, op, dims{L * C3, D, C3, 1});      // q, k or v
  const dnnl::memory::desc head_t(dims{B, H, D, L}, op, dims{L * C3, D, 1, C3});    // k^T or v^T
  const dnnl::memory::desc scores_f32(dims{B, H, L, L}, dt::f32, dims{H * L * L, L * L, L, 1});
  const dnnl::memory::desc scores(dims{B, H, L, L}, op, dims{H * L * L, L * L, L, 1});
  const dnnl::memory::desc scores_t(dims{B, H, L, L}, op, dims{H * L * L, L * L, 1, L});
  const dnnl::memory::desc ctx(dims{B, H, L, D}, op, dims{L * C, D, C, 1});         // O or dO in [B, L, C]
  const dnnl::memory::desc grad(dims{B, H, L, D}, dt::f32, dims{L * C3, D, C3, 1});  // dq, dk or dv in [B, L, 3C]
  Prims p;
  p.qk = Matmul(head, head_t, scores_f32);
  p.pv = Matmul(scores, head, ctx);
  p.dp = Matmul(ctx, head_t, scores_f32);
  p.dv = Matmul(scores_t, ctx, grad);
  p.dq = Matmul(scores, head, grad);
  p.dk = Matmul(scores_t, head, grad);
  return p;
}

Prims prims(int64_t B, int64_t L, int64_t H, int64_t D, dt op) {
  static PrimitiveCache<std::tuple<int64_t, int64_t, int64_t, int64_t, int>, Prims> cache(128);
  return cache.get({B, L, H, D, static_cast<int>(op)}, [&] { return build_prims(B, L, H, D, op); });
}

// Row softmax of S * scale in place over probs with the masks applied (masked keys get exactly
// zero), and the matmul operand P_d = P * keep / (1 - p) (kDrop; otherwise P_d = P) into pd_out:
// bf16 (Out = uint16_t), or fp32 (Out = float; without dropout pd_out is null: P_d is probs).
template <bool kDrop, typename Out>
void softmax_rows(float* probs, Out* pd_out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                  const DropoutMask& drop) {
  constexpr bool kBf16 = std::is_same_v<Out, uint16_t>;
  const int64_t B = s.B, L = s.L, H = s.H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for(B * H * L, [&](int64_t begin, int64_t end) {
    std::vector<float> pd(kDrop && kBf16 ? static_cast<size_t>(L) : 0);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (H * L), i = r % L;
      const int32_t* km = key_mask ? key_mask + b * L : nullptr;
      float* row = probs + r * L;
      Out* rowo = pd_out ? pd_out + r * L : nullptr;
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
#pragma omp simd
        for (int64_t j = 0; j < jend; ++j) row[j] *= inv;
        if constexpr (kBf16) {
          float* d = pd.data();
          drop.apply(static_cast<uint64_t>(r * L), jend, row, d);  // P_d
#pragma omp simd
          for (int64_t j = 0; j < jend; ++j) rowo[j] = f32_to_bf16_simd(d[j]);
        } else {
          drop.apply(static_cast<uint64_t>(r * L), jend, row, rowo);  // P_d
        }
      } else if constexpr (kBf16) {
        for (int64_t j = 0; j < jend; ++j) {
          row[j] *= inv;
          rowo[j] = f32_to_bf16(row[j]);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < jend; ++j) row[j] *= inv;
      }
      for (int64_t j = jend; j < L; ++j) {
        row[j] = 0.0f;
        if (rowo) rowo[j] = 0;
      }
    }
  }, 16);
}

// From dP [B, H, L, L] (dO V^T): dS = scale * P (dP' - rowsum(dP' P)) in bf16 or fp32, where
// dP' = dP * keep / (1 - p) (kDrop; otherwise dP' = dP).
template <bool kDrop, typename Out>
void softmax_backward_rows(const float* probs, const float* dP, Out* dS, const AttentionShape& s,
                           const DropoutMask& drop) {
  const int64_t L = s.L;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  parallel_for(s.B * s.H * L, [&](int64_t begin, int64_t end) {
    std::vector<float> dpd(kDrop ? static_cast<size_t>(L) : 0);
    for (int64_t r = begin; r < end; ++r) {
      const float* pr = probs + r * L;
      const float* dp = dP + r * L;
      Out* ds = dS + r * L;
      if constexpr (kDrop) {  // dP' of this row, in a row buffer
        drop.apply(static_cast<uint64_t>(r * L), L, dp, dpd.data());
        dp = dpd.data();
      }
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < L; ++j) dot += pr[j] * dp[j];
      if constexpr (std::is_same_v<Out, uint16_t>) {
        for (int64_t j = 0; j < L; ++j) ds[j] = f32_to_bf16(scale * pr[j] * (dp[j] - dot));
      } else {
#pragma omp simd
        for (int64_t j = 0; j < L; ++j) ds[j] = scale * pr[j] * (dp[j] - dot);
      }
    }
  }, 16);
}

// S = Q K^T into probs; P = softmax (probs) and the operand P_d (pd: bf16 always, fp32 only with
// dropout, else P_d is probs); O = P_d V. Op is the operand type: float or uint16_t (bf16).
template <typename Op>
void train_forward(const Op* qkv, Op* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                   float* probs, Op* pd, const Dropout& drop) {
  const int64_t C = s.C();
  const Prims p = prims(s.B, s.L, s.H, s.D, std::is_same_v<Op, float> ? dt::f32 : dt::bf16);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  count_flops(4 * s.B * s.H * s.L * s.L * s.D);
  p.qk.execute(qkv, qkv + C, probs);  // S = Q K^T
  if (drop.on()) softmax_rows<true, Op>(probs, pd, s, causal, key_mask, mask);
  else softmax_rows<false, Op>(probs, pd, s, causal, key_mask, mask);
  p.pv.execute(pd ? static_cast<const void*>(pd) : probs, qkv + 2 * C, out);  // O = P_d V
}

}  // namespace

void attention_forward_train(const float* qkv, float* out, const AttentionShape& s, bool causal,
                             const int32_t* key_mask, float* probs, const Dropout& drop) {
  ProfileScope prof("attention train fwd");
  // P_d is probs itself without dropout; with it, a buffer of its own (the backward regenerates it)
  float* pd = drop.on() ? Workspace::local().get(kProbsDropped, static_cast<size_t>(s.B * s.H * s.L * s.L)) : nullptr;
  train_forward<float>(qkv, out, s, causal, key_mask, probs, pd, drop);
}

void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s,
                        const Dropout& drop) {
  ProfileScope prof("attention bwd");
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), nP = B * H * L * L;
  const Prims p = prims(B, L, H, D, dt::f32);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  float* dP = Workspace::local().get(kDprobs, static_cast<size_t>(nP));
  float* dS = Workspace::local().get(kDscores, static_cast<size_t>(nP));
  count_flops(8 * B * H * L * L * D);
  p.dp.execute(dout, qkv + 2 * C, dP);  // dP_d = dO V^T
  const float* pd = probs;
  if (drop.on()) {
    softmax_backward_rows<true, float>(probs, dP, dS, s, mask);
    float* pdrop = Workspace::local().get(kProbsDropped, static_cast<size_t>(nP));  // P_d again, from the mask
    parallel_for(B * H * L, [&](int64_t b, int64_t e) {
      mask.apply(static_cast<uint64_t>(b * L), (e - b) * L, probs + b * L, pdrop + b * L);
    }, 16);
    pd = pdrop;
  } else {
    softmax_backward_rows<false, float>(probs, dP, dS, s, mask);
  }
  p.dv.execute(pd, dout, dqkv + 2 * C);  // dV = P_d^T dO
  p.dq.execute(dS, qkv + C, dqkv);       // dQ = dS K
  p.dk.execute(dS, qkv, dqkv + C);       // dK = dS^T Q
}

void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b, const Dropout& drop) {
  ProfileScope prof("attention fwd bf16");
  train_forward<uint16_t>(qkv_b, out_b, s, causal, key_mask, probs, probs_b, drop);
}

void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const AttentionShape& s, const Dropout& drop) {
  ProfileScope prof("attention bwd bf16");
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  const Prims p = prims(B, L, H, D, dt::bf16);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  uint16_t* dout_b = Workspace::local().get_bf16(kDoutBf16, B * L * C);
  to_bf16(dout, dout_b, B * L * C);
  float* dP = Workspace::local().get(kDprobs, static_cast<size_t>(B * H * L * L));
  uint16_t* dS = Workspace::local().get_bf16(kDscoresBf16, B * H * L * L);
  count_flops(8 * B * H * L * L * D);
  p.dp.execute(dout_b, qkv_b + 2 * C, dP);  // dP_d = dO V^T
  if (drop.on()) softmax_backward_rows<true, uint16_t>(probs, dP, dS, s, mask);
  else softmax_backward_rows<false, uint16_t>(probs, dP, dS, s, mask);
  p.dv.execute(probs_b, dout_b, dqkv + 2 * C);  // dV = P_d^T dO
  p.dq.execute(dS, qkv_b + C, dqkv);            // dQ = dS K
  p.dk.execute(dS, qkv_b, dqkv + C);            // dK = dS^T Q
}

}  // namespace clipkit::backend::cpu
