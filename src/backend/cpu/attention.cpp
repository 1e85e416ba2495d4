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

}  // namespace

void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs, const Dropout& drop) {
  if (!probs) {
    if (drop.on()) fail("attention dropout needs the training forward (probs)");
    return attention_forward_dnnl(qkv, out, s, causal, key_mask);
  }
  attention_forward_train(qkv, out, s, causal, key_mask, probs, drop);  // (attention_train.cpp)
}

}  // namespace clipkit::backend::cpu
