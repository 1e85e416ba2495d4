#include "backend/cpu/attention.h"

#include <cmath>
#include <dnnl.hpp>
#include <tuple>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "backend/cpu/dnnl_context.h"
#include "backend/cpu/dropout.h"
#include "backend/flop_count.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {

namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

// Both attention matmuls for all (batch, head) pairs as two strided batched oneDNN matmuls that
// read q, k, v in place from the fused [B, L, 3C] buffer and write the context into [B, L, C]:
//   S[b,h] = q[b,h] k[b,h]^T           src {B,H,L,D} weights {B,H,D,L} -> dst {B,H,L,L}
//   O[b,h] = softmax(S*scale + mask) v  src {B,H,L,L} weights {B,H,L,D} -> dst {B,H,L,D} in [B,L,C]
struct AttnPrims {
  dnnl::matmul qk, pv;
  dnnl::memory::desc q_md, k_md, s_md, v_md, o_md;
};

AttnPrims build_attn_prims(int64_t B, int64_t L, int64_t H, int64_t D) {
  const int64_t C = H * D, C3 = 3 * C;
  AttnPrims p;
  p.q_md = dnnl::memory::desc(dims{B, H, L, D}, dt::f32, dims{L * C3, D, C3, 1});
  p.k_md = dnnl::memory::desc(dims{B, H, D, L}, dt::f32, dims{L * C3, D, 1, C3});
  p.s_md = dnnl::memory::desc(dims{B, H, L, L}, dt::f32, dims{H * L * L, L * L, L, 1});
  p.v_md = dnnl::memory::desc(dims{B, H, L, D}, dt::f32, dims{L * C3, D, C3, 1});
  p.o_md = dnnl::memory::desc(dims{B, H, L, D}, dt::f32, dims{L * C, D, C, 1});
  auto& eng = cpu_engine();
  p.qk = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.q_md, p.k_md, p.s_md), eng));
  p.pv = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.s_md, p.v_md, p.o_md), eng));
  return p;
}

AttnPrims attn_prims(int64_t B, int64_t L, int64_t H, int64_t D) {
  static PrimitiveCache<std::tuple<int64_t, int64_t, int64_t, int64_t>, AttnPrims> cache(128);
  return cache.get({B, L, H, D}, [&] { return build_attn_prims(B, L, H, D); });
}

// In place over S [B, H, L, L]: row softmax of S*scale with the masks applied (masked -> 0).
void masked_softmax_rows(float* S, int64_t B, int64_t H, int64_t L, float scale, bool causal, const int32_t* key_mask) {
  parallel_for(B * H * L, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (H * L), i = r % L;
      const int32_t* km = key_mask ? key_mask + b * L : nullptr;
      float* row = S + r * L;
      const int64_t jend = causal ? i + 1 : L;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < jend; ++j) {
        const bool masked = km && km[j] == 0;
        row[j] = masked ? -std::numeric_limits<float>::infinity() : row[j] * scale;
        mx = std::max(mx, row[j]);
      }
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < jend; ++j) {
        const float p = row[j] == -std::numeric_limits<float>::infinity() ? 0.0f : exp_approx(row[j] - mx);
        row[j] = p;
        sum += p;
      }
      const float inv = sum > 0 ? 1.0f / sum : 0.0f;
#pragma omp simd
      for (int64_t j = 0; j < jend; ++j) row[j] *= inv;
      for (int64_t j = jend; j < L; ++j) row[j] = 0.0f;
    }
  }, 16);
}

void attention_forward_dnnl(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask) {
  ProfileScope prof("attention");
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  const AttnPrims p = attn_prims(B, L, H, D);
  auto& eng = cpu_engine();
  auto& strm = cpu_stream();
  float* S = Workspace::local().get(kAttentionScores, static_cast<size_t>(B * H * L * L));
  auto* base = const_cast<float*>(qkv);
  dnnl::memory q(p.q_md, eng, base), k(p.k_md, eng, base + C), v(p.v_md, eng, base + 2 * C);
  dnnl::memory sm(p.s_md, eng, S), o(p.o_md, eng, out);
  p.qk.execute(strm, {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, k}, {DNNL_ARG_DST, sm}});
  strm.wait();
  masked_softmax_rows(S, B, H, L, 1.0f / std::sqrt(static_cast<float>(D)), causal, key_mask);
  p.pv.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, o}});
  strm.wait();
}

// The training kernels, with (kDrop) or without attention-probability dropout; kDrop = false is
// exactly the kernel without dropout.
//   forward   P = softmax(S)  P_d = P * keep / (1 - p)  out = P_d V       (probs = P)
//   backward  dV = P_d^T dO   dP = (dO V^T) * keep / (1 - p)   dS = P (dP - rowsum(dP P))
template <bool kDrop>
void train_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                   float* probs, const DropoutMask& drop) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  parallel_for(B * H, [&](int64_t begin, int64_t end) {
    std::vector<float> sc(static_cast<size_t>(L)), keep(kDrop ? static_cast<size_t>(L) : 0);
    std::vector<float> acc(static_cast<size_t>(D));
    std::vector<float> kt(static_cast<size_t>(L * D)), vt(static_cast<size_t>(L * D));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * L * C3;
      const int32_t* km = key_mask ? key_mask + b * L : nullptr;
      // gather this head's keys and values contiguously: [L, D]
      for (int64_t j = 0; j < L; ++j) {
        std::memcpy(kt.data() + j * D, base + j * C3 + C + h * D, sizeof(float) * D);
        std::memcpy(vt.data() + j * D, base + j * C3 + 2 * C + h * D, sizeof(float) * D);
      }
      for (int64_t i = 0; i < L; ++i) {
        const float* q = base + i * C3 + h * D;
        const int64_t jend = causal ? i + 1 : L;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < jend; ++j) {
          const float* k = kt.data() + j * D;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
          const bool masked = km && km[j] == 0;
          sc[j] = masked ? -std::numeric_limits<float>::infinity() : dot * scale;
          mx = std::max(mx, sc[j]);
        }
        float sum = 0;
        float* scp = sc.data();
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < jend; ++j) {
          const float p = scp[j] == -std::numeric_limits<float>::infinity() ? 0.0f : exp_approx(scp[j] - mx);
          scp[j] = p;
          sum += p;
        }
        const float inv = sum > 0 ? 1.0f / sum : 0.0f;  // a fully masked row (never in CLIP) gives zeros
        if constexpr (kDrop) drop.scales(static_cast<uint64_t>((bh * L + i) * L), jend, keep.data());
        float* a = acc.data();
        std::fill(a, a + D, 0.0f);
        for (int64_t j = 0; j < jend; ++j) {
          const float p = scp[j] * inv;
          scp[j] = p;
          const float pd = kDrop ? p * keep[j] : p;  // P_d
          if (pd == 0) continue;
          const float* v = vt.data() + j * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) a[d] += pd * v[d];
        }
        std::memcpy(out + (b * L + i) * C + h * D, a, sizeof(float) * D);
        float* pr = probs + (bh * L + i) * L;
        std::memcpy(pr, scp, sizeof(float) * jend);
        std::fill(pr + jend, pr + L, 0.0f);
      }
    }
  });
}

template <bool kDrop>
void train_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s,
                    const DropoutMask& drop) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::memset(dqkv, 0, sizeof(float) * B * L * C3);
  parallel_for(B * H, [&](int64_t begin, int64_t end) {
    std::vector<float> dp(static_cast<size_t>(L)), keep(kDrop ? static_cast<size_t>(L) : 0);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * L * C3;
      float* dbase = dqkv + b * L * C3;
      const float* P = probs + bh * L * L;
      for (int64_t i = 0; i < L; ++i) {
        const float* go = dout + (b * L + i) * C + h * D;
        const float* pr = P + i * L;
        if constexpr (kDrop) drop.scales(static_cast<uint64_t>((bh * L + i) * L), L, keep.data());
        // dV_j += pd_ij * dout_i ; dP_ij = (dout_i . v_j) * keep_ij / (1 - p)
        float dot_pd = 0;
        for (int64_t j = 0; j < L; ++j) {
          if (pr[j] == 0 || (kDrop && keep[j] == 0)) { dp[j] = 0; continue; }
          const float* v = base + j * C3 + 2 * C + h * D;
          float* dv = dbase + j * C3 + 2 * C + h * D;
          float g = 0;
          // (pr[j] stays inside the loop: hoisted, GCC compiles the sum g differently and the
          // kDrop = false results change in the last bit)
          for (int64_t d = 0; d < D; ++d) {
            g += go[d] * v[d];
            dv[d] += (kDrop ? pr[j] * keep[j] : pr[j]) * go[d];
          }
          if constexpr (kDrop) g *= keep[j];
          dp[j] = g;
          dot_pd += pr[j] * g;
        }
        // dS_ij = p_ij (dP_ij - sum_k p_ik dP_ik); dq_i += scale dS_ij k_j ; dk_j += scale dS_ij q_i
        const float* q = base + i * C3 + h * D;
        float* dq = dbase + i * C3 + h * D;
        for (int64_t j = 0; j < L; ++j) {
          if (pr[j] == 0) continue;
          const float ds = pr[j] * (dp[j] - dot_pd) * scale;
          const float* k = base + j * C3 + C + h * D;
          float* dk = dbase + j * C3 + C + h * D;
          for (int64_t d = 0; d < D; ++d) {
            dq[d] += ds * k[d];
            dk[d] += ds * q[d];
          }
        }
      }
    }
  });
}

}  // namespace

void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs, const Dropout& drop) {
  if (!probs) {
    if (drop.on()) fail("attention dropout needs the training forward (probs)");
    return attention_forward_dnnl(qkv, out, s, causal, key_mask);
  }
  // training: the direct kernel, which also saves the softmax weights for the backward pass
  ProfileScope prof("attention train fwd");
  count_flops(4 * s.B * s.H * s.L * s.L * s.D);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  if (drop.on()) return train_forward<true>(qkv, out, s, causal, key_mask, probs, mask);
  train_forward<false>(qkv, out, s, causal, key_mask, probs, mask);
}

void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s,
                        const Dropout& drop) {
  ProfileScope prof("attention bwd");
  count_flops(8 * s.B * s.H * s.L * s.L * s.D);
  const DropoutMask mask(drop.p, drop.seed, drop.site);
  if (drop.on()) return train_backward<true>(dout, qkv, probs, dqkv, s, mask);
  train_backward<false>(dout, qkv, probs, dqkv, s, mask);
}

}  // namespace clipkit::backend::cpu
