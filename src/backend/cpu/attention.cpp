// Attention on the CPU, in every pass: the attention products as strided batched oneDNN matmuls
// over all (batch, head) pairs (reading q, k, v in place from [B, L, 3C]), the softmax and its
// backward in fp32 row kernels between them. Inference runs the forward on fp32 operands with the
// scores in a workspace; a training pass keeps the softmax weights for its backward, on fp32
// operands or (the bf16 path) on bf16 ones with fp32 accumulation.
#include "backend/cpu/attention.h"
#include "backend/cpu/attention_fused.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "core/error.h"
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

// The operand layouts of one (B, L, H, D) problem, op (f32 or bf16) for what the products read:
struct Descs {
  dnnl::memory::desc head, head_t, scores_f32, scores, scores_t, ctx, grad;
  Descs(int64_t B, int64_t L, int64_t H, int64_t D, dt op) {
    const int64_t C = H * D, C3 = 3 * C;
    head = dnnl::memory::desc(dims{B, H, L, D}, op, dims{L * C3, D, C3, 1});       // q, k or v
    head_t = dnnl::memory::desc(dims{B, H, D, L}, op, dims{L * C3, D, 1, C3});     // k^T or v^T
    scores_f32 = dnnl::memory::desc(dims{B, H, L, L}, dt::f32, dims{H * L * L, L * L, L, 1});
    scores = dnnl::memory::desc(dims{B, H, L, L}, op, dims{H * L * L, L * L, L, 1});
    scores_t = dnnl::memory::desc(dims{B, H, L, L}, op, dims{H * L * L, L * L, 1, L});
    ctx = dnnl::memory::desc(dims{B, H, L, D}, op, dims{L * C, D, C, 1});          // O or dO in [B, L, C]
    grad = dnnl::memory::desc(dims{B, H, L, D}, dt::f32, dims{L * C3, D, C3, 1});  // dq, dk or dv in [B, L, 3C]
  }
};

// forward   S = Q K^T            O = P V                (O written into [B, L, C])
// backward  dP = dO V^T          dV = P^T dO            dQ = dS K          dK = dS^T Q
// (separate caches: an inference shape never builds the backward's four)
struct FwdPrims {
  Matmul qk, pv;
};
struct BwdPrims {
  Matmul dp, dv, dq, dk;
};
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int>;

FwdPrims fwd_prims(int64_t B, int64_t L, int64_t H, int64_t D, dt op) {
  static PrimitiveCache<Key, FwdPrims> cache(128);
  return cache.get({B, L, H, D, static_cast<int>(op)}, [&] {
    const Descs d(B, L, H, D, op);
    return FwdPrims{Matmul(d.head, d.head_t, d.scores_f32), Matmul(d.scores, d.head, d.ctx)};
  });
}

BwdPrims bwd_prims(int64_t B, int64_t L, int64_t H, int64_t D, dt op) {
  static PrimitiveCache<Key, BwdPrims> cache(128);
  return cache.get({B, L, H, D, static_cast<int>(op)}, [&] {
    const Descs d(B, L, H, D, op);
    return BwdPrims{Matmul(d.ctx, d.head_t, d.scores_f32), Matmul(d.scores_t, d.ctx, d.grad),
                    Matmul(d.scores, d.head, d.grad), Matmul(d.scores_t, d.head, d.grad)};
  });
}

template <typename Op>
constexpr dt op_type() {
  return std::is_same_v<Op, float> ? dt::f32 : dt::bf16;
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
void forward(const Op* qkv, Op* out, const AttentionShape& s, bool causal, const int32_t* key_mask, float* probs,
             Op* pd, const Dropout& drop) {
  const int64_t C = s.C();
  const FwdPrims p = fwd_prims(s.B, s.L, s.H, s.D, op_type<Op>());
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  p.qk.execute(qkv, qkv + C, probs);  // S = Q K^T
  if (drop.on()) softmax_rows<true, Op>(probs, pd, s, causal, key_mask, mask);
  else softmax_rows<false, Op>(probs, pd, s, causal, key_mask, mask);
  p.pv.execute(pd ? static_cast<const void*>(pd) : probs, qkv + 2 * C, out);  // O = P_d V
}

// From dout (dO, as an operand), qkv, the saved P and the operand P_d: dqkv [B, L, 3C]
// (overwritten); dS in the workspace slot ds_slot.
template <typename Op>
void backward(const Op* dout, const Op* qkv, const float* probs, const Op* pd, float* dqkv, const AttentionShape& s,
              const Dropout& drop, int ds_slot) {
  const int64_t C = s.C(), nP = s.B * s.H * s.L * s.L;
  const BwdPrims p = bwd_prims(s.B, s.L, s.H, s.D, op_type<Op>());
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  auto& ws = Workspace::local();
  float* dP = ws.get(kDprobs, static_cast<size_t>(nP));
  Op* dS;
  if constexpr (std::is_same_v<Op, float>) dS = ws.get(ds_slot, static_cast<size_t>(nP));
  else dS = ws.get_bf16(ds_slot, nP);
  p.dp.execute(dout, qkv + 2 * C, dP);  // dP_d = dO V^T
  if (drop.on()) softmax_backward_rows<true, Op>(probs, dP, dS, s, mask);
  else softmax_backward_rows<false, Op>(probs, dP, dS, s, mask);
  p.dv.execute(pd, dout, dqkv + 2 * C);  // dV = P_d^T dO
  p.dq.execute(dS, qkv + C, dqkv);       // dQ = dS K
  p.dk.execute(dS, qkv, dqkv + C);       // dK = dS^T Q
}

// Without bf16 kernels (bf16_matmul_native() false) the bf16 pass runs its products on fp32 copies
// of the bf16 operands, widened once per call here rather than once per product (each strided
// operand spans all of qkv): the fp32 products of the same bf16 values, P_d and dS rounded to bf16
// as the bf16 kernels read them, O rounded to bf16 as they write it.
void forward_widened(const uint16_t* qkv_b, uint16_t* out_b, const AttentionShape& s, bool causal,
                     const int32_t* key_mask, float* probs, uint16_t* pd_b, const Dropout& drop) {
  const int64_t C = s.C(), nx = s.B * s.L * C, nP = s.B * s.H * s.L * s.L;
  auto& ws = Workspace::local();
  float* qkv = ws.get(kAttnQkvF32, static_cast<size_t>(3 * nx));
  widen_bf16(qkv_b, qkv, 3 * nx);
  const FwdPrims p = fwd_prims(s.B, s.L, s.H, s.D, dt::f32);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  p.qk.execute(qkv, qkv + C, probs);  // S = Q K^T
  if (drop.on()) softmax_rows<true, uint16_t>(probs, pd_b, s, causal, key_mask, mask);
  else softmax_rows<false, uint16_t>(probs, pd_b, s, causal, key_mask, mask);
  float* pd = ws.get(kAttnScoresF32, static_cast<size_t>(nP));
  widen_bf16(pd_b, pd, nP);
  float* out = ws.get(kAttnCtxF32, static_cast<size_t>(nx));
  p.pv.execute(pd, qkv + 2 * C, out);  // O = P_d V
  to_bf16(out, out_b, nx);
}

void backward_widened(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* pd_b, float* dqkv,
                      const AttentionShape& s, const Dropout& drop) {
  const int64_t C = s.C(), nx = s.B * s.L * C, nP = s.B * s.H * s.L * s.L;
  auto& ws = Workspace::local();
  float* qkv = ws.get(kAttnQkvF32, static_cast<size_t>(3 * nx));
  widen_bf16(qkv_b, qkv, 3 * nx);
  float* dof = ws.get(kAttnCtxF32, static_cast<size_t>(nx));  // dO rounded to bf16
  parallel_for(nx, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) dof[i] = bf16_to_f32(f32_to_bf16_simd(dout[i]));
  }, 1 << 14);
  const BwdPrims p = bwd_prims(s.B, s.L, s.H, s.D, dt::f32);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  float* dP = ws.get(kDprobs, static_cast<size_t>(nP));
  uint16_t* dS_b = ws.get_bf16(kDscoresBf16, nP);
  p.dp.execute(dof, qkv + 2 * C, dP);  // dP_d = dO V^T
  if (drop.on()) softmax_backward_rows<true, uint16_t>(probs, dP, dS_b, s, mask);
  else softmax_backward_rows<false, uint16_t>(probs, dP, dS_b, s, mask);
  float* op = ws.get(kAttnScoresF32, static_cast<size_t>(nP));
  widen_bf16(pd_b, op, nP);
  p.dv.execute(op, dof, dqkv + 2 * C);  // dV = P_d^T dO
  widen_bf16(dS_b, op, nP);
  p.dq.execute(op, qkv + C, dqkv);  // dQ = dS K
  p.dk.execute(op, qkv, dqkv + C);  // dK = dS^T Q
}

}  // namespace

void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs, const Dropout& drop) {
  const int64_t nP = s.B * s.H * s.L * s.L;
  if (!probs) {  // inference: the scores in a workspace
    if (drop.on()) fail("attention dropout needs the training forward (probs)");
    ProfileScope prof("attention");
    if (attention_fused_supported(s))
      return attention_forward_fused(qkv, out, s, causal, key_mask);
    float* S = Workspace::local().get(kAttentionScores, static_cast<size_t>(nP));
    return forward<float>(qkv, out, s, causal, key_mask, S, nullptr, drop);
  }
  ProfileScope prof("attention train fwd");
  count_flops(4 * nP * s.D);
  // P_d is probs itself without dropout; with it, a buffer of its own (the backward regenerates it)
  float* pd = drop.on() ? Workspace::local().get(kProbsDropped, static_cast<size_t>(nP)) : nullptr;
  forward<float>(qkv, out, s, causal, key_mask, probs, pd, drop);
}

void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s,
                        const Dropout& drop) {
  ProfileScope prof("attention bwd");
  const int64_t L = s.L, nP = s.B * s.H * L * L;
  count_flops(8 * nP * s.D);
  const float* pd = probs;
  if (drop.on()) {  // P_d again, from the saved P and the mask
    const DropoutMask mask(drop.p, drop.seed, drop.site);
    float* pdrop = Workspace::local().get(kProbsDropped, static_cast<size_t>(nP));
    parallel_for(s.B * s.H * L, [&](int64_t b, int64_t e) {
      mask.apply(static_cast<uint64_t>(b * L), (e - b) * L, probs + b * L, pdrop + b * L);
    }, 16);
    pd = pdrop;
  }
  backward<float>(dout, qkv, probs, pd, dqkv, s, drop, kDscores);
}

void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b, const Dropout& drop) {
  ProfileScope prof("attention fwd bf16");
  count_flops(4 * s.B * s.H * s.L * s.L * s.D);
  if (!bf16_matmul_native()) return forward_widened(qkv_b, out_b, s, causal, key_mask, probs, probs_b, drop);
  forward<uint16_t>(qkv_b, out_b, s, causal, key_mask, probs, probs_b, drop);
}

void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const AttentionShape& s, const Dropout& drop) {
  ProfileScope prof("attention bwd bf16");
  const int64_t n = s.B * s.L * s.C();
  count_flops(8 * s.B * s.H * s.L * s.L * s.D);
  if (!bf16_matmul_native()) return backward_widened(dout, qkv_b, probs, probs_b, dqkv, s, drop);
  uint16_t* dout_b = Workspace::local().get_bf16(kDoutBf16, n);
  to_bf16(dout, dout_b, n);
  backward<uint16_t>(dout_b, qkv_b, probs, probs_b, dqkv, s, drop, kDscoresBf16);
}

}  // namespace clipkit::backend::cpu
