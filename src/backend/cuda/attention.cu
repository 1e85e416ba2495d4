#include "backend/cuda/attention.h"

#include <cmath>
#include <string>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/dropout.h"
#include "backend/cuda/gemm.h"

namespace clipkit::cuda {

namespace {

// The row layout [B, L, S*C] (S slots of C = H*D columns: q|k|v or one) <-> the head layout: slot
// s as [B*H, L, D]. to_heads copies rows -> heads, else heads -> rows.
template <typename From, typename To>
__global__ void heads_kernel(const From* src, To* dst, int64_t B, int64_t L, int64_t H, int64_t D, int S,
                             bool to_heads) {
  const int64_t C = H * D, per_slot = B * L * C;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < S * per_slot;
       i += int64_t{gridDim.x} * blockDim.x) {
    // i indexes the head layout: slot, b, h, l, d
    const int64_t s = i / per_slot, r = i % per_slot;
    const int64_t d = r % D, l = (r / D) % L, bh = r / (L * D), h = bh % H, b = bh / H;
    const int64_t row = ((b * L + l) * S + s) * C + h * D + d;
    if (to_heads) dev::store(dst + i, dev::load(src + row));
    else dev::store(dst + row, dev::load(src + i));
  }
}

template <typename From, typename To>
void heads(const From* src, To* dst, const backend::AttentionShape& s, int slots, bool to_heads, Context& ctx) {
  const int64_t n = slots * s.B * s.L * s.C();
  heads_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(src, dst, s.B, s.L, s.H, s.D, slots, to_heads);
  CLIPKIT_LAUNCH_CHECK(heads_kernel);
}

// q, k, v of qkv [B, L, 3C], each as [B*H, L, D], in scratch
template <typename T>
struct Heads {
  T *q, *k, *v;
};
template <typename T>
Heads<T> split_qkv(const T* qkv, const backend::AttentionShape& s, Context& ctx) {
  const int64_t n = s.B * s.H * s.L * s.D;
  T* q = ctx.scratch().alloc<T>(3 * n);
  heads(qkv, q, s, 3, true, ctx);
  return {q, q + n, q + 2 * n};
}

constexpr int kRowsPerBlock = 8;  // one warp per row

// In place over S [B*H, L, L] -> P (fp32, before dropout), and P_d = P * keep (type Pd) when pd.
template <typename Pd>
__global__ void softmax_kernel(float* S, Pd* pd, int64_t BH, int64_t H, int64_t L, float scale, bool causal,
                               const int32_t* key_mask, float p, float keep_scale, uint64_t stream) {
  const int64_t row = blockIdx.x * int64_t{kRowsPerBlock} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= BH * L) return;
  const int64_t b = row / (H * L), i = row % L;
  const int32_t* km = key_mask ? key_mask + b * L : nullptr;
  float* r = S + row * L;
  const int64_t jend = causal ? i + 1 : L;
  auto masked = [&](int64_t j) { return j >= jend || (km && km[j] == 0); };
  float mx = -INFINITY;
  for (int64_t j = lane; j < jend; j += 32)
    if (!masked(j)) mx = fmaxf(mx, r[j] * scale);
  mx = dev::warp_max(mx);
  float sum = 0;
  for (int64_t j = lane; j < L; j += 32) {
    const float e = masked(j) ? 0.0f : expf(r[j] * scale - mx);
    r[j] = e;
    sum += e;
  }
  sum = dev::warp_sum(sum);
  const float inv = sum > 0 ? 1.0f / sum : 0.0f;
  for (int64_t j = lane; j < L; j += 32) {
    const float v = r[j] * inv;
    r[j] = v;
    if (pd) dev::store(pd + row * L + j, p > 0 ? v * dropout_factor(stream, static_cast<uint64_t>(row * L + j), p, keep_scale) : v);
  }
}

// dS = P (dP * keep - rowsum(P dP keep)) * scale, from dP [B*H, L, L] (fp32) into ds (type Ds)
template <typename Ds>
__global__ void softmax_bwd_kernel(const float* P, const float* dP, Ds* ds, int64_t rows, int64_t L, float scale,
                                   float p, float keep_scale, uint64_t stream) {
  const int64_t row = blockIdx.x * int64_t{kRowsPerBlock} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* pr = P + row * L;
  const float* dpr = dP + row * L;
  auto keep = [&](int64_t j) {
    return p > 0 ? dropout_factor(stream, static_cast<uint64_t>(row * L + j), p, keep_scale) : 1.0f;
  };
  float dot = 0;
  for (int64_t j = lane; j < L; j += 32)
    if (pr[j] != 0) dot += pr[j] * (dpr[j] * keep(j));
  dot = dev::warp_sum(dot);
  for (int64_t j = lane; j < L; j += 32)
    dev::store(ds + row * L + j, pr[j] == 0 ? 0.0f : pr[j] * (dpr[j] * keep(j) - dot) * scale);
}

struct DropParams {
  float p = 0, keep_scale = 1;
  uint64_t stream = 0;
};

DropParams drop_params(const backend::Dropout& d) {
  DropParams r;
  r.keep_scale = dropout_keep_scale(d.p);
  r.p = d.p;
  r.stream = backend::dropout_stream(d.seed, d.site);
  return r;
}

// true when there is nothing to compute; a negative size is refused
bool empty_shape(const backend::AttentionShape& s, const char* what) {
  if (s.B < 0 || s.L < 0 || s.H < 0 || s.D < 0)
    fail_msg(std::string("cuda ") + what + ": negative attention shape");
  return s.B * s.H == 0 || s.L == 0 || s.D == 0;
}

template <typename T>
constexpr DType kType = sizeof(T) == 4 ? DType::F32 : DType::BF16;

// Forward for operand type T (float or bf16 as uint16_t); qkv in T, out in T.
template <typename T>
void forward(const T* qkv, T* out, const backend::AttentionShape& s, bool causal, const int32_t* key_mask, float* probs,
             T* probs_d, const backend::Dropout& drop, Context& ctx) {
  if (drop.on() && !probs) fail_msg("attention dropout needs the training forward (probs)");
  if (empty_shape(s, "attention_forward")) return;
  const int64_t L = s.L, H = s.H, D = s.D, BH = s.B * H;
  constexpr DType t = kType<T>;
  const DropParams dp = drop_params(drop);
  DeviceArena& ws = ctx.scratch();
  ArenaScope scope(ws);
  const auto [q, k, v] = split_qkv(qkv, s, ctx);
  float* S = probs ? probs : ws.alloc<float>(BH * L * L);
  gemm(ctx, false, true, L, L, D, q, D, k, D, t, S, L, DType::F32, {}, {BH, L * D, L * D, L * L});
  // P_d: the context's operand. fp32 without dropout reads P itself.
  T* pd = probs_d;
  if (!pd && (sizeof(T) == 2 || drop.on())) pd = ws.alloc<T>(BH * L * L);
  const unsigned grid = static_cast<unsigned>((BH * L + kRowsPerBlock - 1) / kRowsPerBlock);
  softmax_kernel<<<grid, 32 * kRowsPerBlock, 0, ctx.stream()>>>(S, pd, BH, H, L, 1.0f / std::sqrt(static_cast<float>(D)),
                                                              causal, key_mask, dp.p, dp.keep_scale, dp.stream);
  CLIPKIT_LAUNCH_CHECK(softmax_kernel);
  const void* pdv = pd ? static_cast<const void*>(pd) : static_cast<const void*>(S);
  T* o = ws.alloc<T>(BH * L * D);
  gemm(ctx, false, false, L, D, L, pdv, L, v, D, t, o, D, t, {}, {BH, L * L, L * D, L * D});
  heads(o, out, s, 1, false, ctx);
}

// Backward: dout fp32 (rounded to T for the products), qkv and P_d in T, dqkv fp32.
template <typename T>
void backward(const float* dout, const T* qkv, const float* probs, const T* probs_d, float* dqkv,
              const backend::AttentionShape& s, const backend::Dropout& drop, Context& ctx) {
  if (!probs) fail_msg("cuda attention_backward: needs the forward's saved probs");
  if (empty_shape(s, "attention_backward")) return;
  const int64_t L = s.L, D = s.D, BH = s.B * s.H;
  const DropParams dp = drop_params(drop);
  ArenaScope scope(ctx.scratch());
  DeviceArena& ws = ctx.scratch();
  const auto [q, k, v] = split_qkv(qkv, s, ctx);
  constexpr DType t = kType<T>;
  T* dO = ws.alloc<T>(BH * L * D);
  heads(dout, dO, s, 1, true, ctx);
  // P_d: given (bf16), P itself (fp32 without dropout) or P * keep recomputed (fp32 with dropout)
  const void* pd = probs_d ? static_cast<const void*>(probs_d) : static_cast<const void*>(probs);
  if (!probs_d && drop.on()) {
    float* pdf = ws.alloc<float>(BH * L * L);
    dropout_apply(probs, pdf, BH * L, L, nullptr, drop.p, drop.seed, drop.site, ctx);
    pd = pdf;
  }
  float* dq = ws.alloc<float>(3 * BH * L * D);
  float* dk = dq + BH * L * D;
  float* dv = dk + BH * L * D;
  const Batch ll_ld{BH, L * L, L * D, L * D}, ld_ld_ll{BH, L * D, L * D, L * L};
  gemm(ctx, true, false, L, D, L, pd, L, dO, D, t, dv, D, DType::F32, {}, ll_ld);       // dV = P_d^T dO
  float* dP = ws.alloc<float>(BH * L * L);
  gemm(ctx, false, true, L, L, D, dO, D, v, D, t, dP, L, DType::F32, {}, ld_ld_ll);     // dP = dO V^T
  T* dS = ws.alloc<T>(BH * L * L);
  const unsigned grid = static_cast<unsigned>((BH * L + kRowsPerBlock - 1) / kRowsPerBlock);
  softmax_bwd_kernel<<<grid, 32 * kRowsPerBlock, 0, ctx.stream()>>>(
      probs, dP, dS, BH * L, L, 1.0f / std::sqrt(static_cast<float>(D)), dp.p, dp.keep_scale, dp.stream);
  CLIPKIT_LAUNCH_CHECK(softmax_bwd_kernel);
  gemm(ctx, false, false, L, D, L, dS, L, k, D, t, dq, D, DType::F32, {}, ll_ld);       // dQ = dS K
  gemm(ctx, true, false, L, D, L, dS, L, q, D, t, dk, D, DType::F32, {}, ll_ld);        // dK = dS^T Q
  heads(dq, dqkv, s, 3, false, ctx);
}

}  // namespace

void attention_forward(const float* qkv, float* out, const backend::AttentionShape& s, bool causal,
                       const int32_t* key_mask, float* probs, const backend::Dropout& drop, Context& ctx) {
  forward<float>(qkv, out, s, causal, key_mask, probs, nullptr, drop, ctx);
}

void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv,
                        const backend::AttentionShape& s, const backend::Dropout& drop, Context& ctx) {
  backward<float>(dout, qkv, probs, nullptr, dqkv, s, drop, ctx);
}

void attention_forward_bf16(const uint16_t* qkv_b, uint16_t* out_b, const backend::AttentionShape& s, bool causal,
                            const int32_t* key_mask, float* probs, uint16_t* probs_b,
                            const backend::Dropout& drop, Context& ctx) {
  if (!probs != !probs_b) fail_msg("cuda attention_forward_bf16: probs and probs_b go together (training) or not at all");
  forward<uint16_t>(qkv_b, out_b, s, causal, key_mask, probs, probs_b, drop, ctx);
}

void attention_backward_bf16(const float* dout, const uint16_t* qkv_b, const float* probs, const uint16_t* probs_b,
                             float* dqkv, const backend::AttentionShape& s, const backend::Dropout& drop,
                             Context& ctx) {
  backward<uint16_t>(dout, qkv_b, probs, probs_b, dqkv, s, drop, ctx);
}

}  // namespace clipkit::cuda
