#include "backend/cuda/optimizer.h"

#include <cmath>
#include <string>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

constexpr int kThreads = 256;

struct Entry {
  float *w, *g, *m, *v;
  int decay;
};

// The host-side scalars of the CPU's adamw, computed the same way.
struct Scalars {
  float step_size, bc2_sqrt, b2, c1, c2, eps, decay;
};

__global__ void adamw_kernel(const Entry* params, const AdamWChunk* chunks, Scalars sc, double grad_scale,
                             const double* total_norm, double max_norm) {
  const AdamWChunk ch = chunks[blockIdx.x];
  const Entry e = params[ch.param];
  double coef = grad_scale;  // torch's clip coefficient
  if (total_norm) coef = max_norm > 0 ? fmin(1.0, max_norm / (*total_norm + 1e-6)) : 1.0;
  const float decay = e.decay ? sc.decay : 1.0f;
  for (int64_t k = ch.begin + threadIdx.x; k < ch.begin + ch.count; k += kThreads) {
    float g = e.g[k];
    if (coef != 1.0) {
      g = __double2float_rn(__dmul_rn(static_cast<double>(g), coef));
      e.g[k] = g;
    }
    // the CPU's operations one by one (the _rn intrinsics keep nvcc from contracting them)
    const float wk = __fmul_rn(e.w[k], decay);
    const float m = __fmaf_rn(__fsub_rn(g, e.m[k]), sc.c1, e.m[k]);
    const float v = __fmaf_rn(e.v[k], sc.b2, __fmul_rn(__fmul_rn(sc.c2, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), sc.bc2_sqrt), sc.eps);
    e.w[k] = __fsub_rn(wk, __fdiv_rn(__fmul_rn(sc.step_size, m), denom));
    e.m[k] = m;
    e.v[k] = v;
  }
}

__global__ void sumsq_kernel(const float* const* grads, const AdamWChunk* chunks, double* partial) {
  const AdamWChunk ch = chunks[blockIdx.x];
  const float* g = grads[ch.param];
  double s = 0;
  for (int64_t k = ch.begin + threadIdx.x; k < ch.begin + ch.count; k += kThreads)
    s += static_cast<double>(g[k]) * g[k];
  s = dev::block_sum<kThreads>(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void finish_norm_kernel(const double* partial, int64_t n, double* total) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += partial[i];
  *total = sqrt(s);
}

// A host table copied into the scratch arena (valid for work queued on ctx's stream until the
// caller's ArenaScope ends; a pageable host -> device copy has read `v` when it returns).
template <typename T>
const T* to_scratch(const std::vector<T>& v, Context& ctx) {
  T* d = ctx.scratch().alloc<T>(static_cast<int64_t>(v.size()));
  copy_to_device(d, v.data(), sizeof(T) * v.size(), ctx.stream());
  return d;
}

void check_f32(const backend::Tensor& t, const char* what, int64_t n) {
  if (t.dtype() != DType::F32 || t.numel() != n)
    fail_msg(std::string("cuda adamw: ") + what + " must be F32 with as many elements as the weights");
}

void launch_adamw(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s, double grad_scale,
                  const double* total_norm, double max_norm, Context& ctx) {
  const double lr = s.lr;
  const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.t));
  const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.t));
  const float b1 = static_cast<float>(s.beta1), b2 = static_cast<float>(s.beta2);
  Scalars sc;
  sc.step_size = static_cast<float>(lr / bc1);
  sc.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  sc.b2 = b2;
  sc.c1 = 1.0f - b1;
  sc.c2 = 1.0f - b2;
  sc.eps = static_cast<float>(s.eps);
  sc.decay = static_cast<float>(1.0 - lr * s.weight_decay);
  std::vector<Entry> entries;
  std::vector<int64_t> sizes;
  for (const backend::OptimizerSlot& p : slots) {
    const int64_t n = p.w.numel();
    check_f32(p.w, "w", n);
    check_f32(p.g, "g", n);
    check_f32(p.m, "m", n);
    check_f32(p.v, "v", n);
    entries.push_back({p.w.as<float>(), p.g.as<float>(), p.m.as<float>(), p.v.as<float>(), p.decay ? 1 : 0});
    sizes.push_back(n);
  }
  const std::vector<AdamWChunk> chunks = adamw_chunks(sizes, kAdamWChunk);
  if (chunks.empty()) return;
  ArenaScope scope(ctx.scratch());
  const Entry* d_entries = to_scratch(entries, ctx);
  const AdamWChunk* d_chunks = to_scratch(chunks, ctx);
  adamw_kernel<<<static_cast<unsigned>(chunks.size()), kThreads, 0, ctx.stream()>>>(d_entries, d_chunks, sc,
                                                                                     grad_scale, total_norm, max_norm);
  CLIPKIT_LAUNCH_CHECK(adamw_kernel);
}

}  // namespace

std::vector<AdamWChunk> adamw_chunks(const std::vector<int64_t>& sizes, int64_t chunk) {
  std::vector<AdamWChunk> out;
  for (size_t i = 0; i < sizes.size(); ++i)
    for (int64_t b = 0; b < sizes[i]; b += chunk)
      out.push_back({static_cast<int32_t>(i), b, std::min(chunk, sizes[i] - b)});
  return out;
}

void adamw(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s, Context& ctx) {
  launch_adamw(slots, s, s.grad_scale, nullptr, 0.0, ctx);
}

void adamw_clipped(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s,
                   const double* total_norm, double max_norm, Context& ctx) {
  launch_adamw(slots, s, 1.0, total_norm, max_norm, ctx);
}

void grad_norm(const std::vector<backend::Tensor>& grads, double* total, Context& ctx) {
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  for (const backend::Tensor& g : grads) {
    if (g.dtype() != DType::F32) fail_msg("cuda grad_norm: gradients must be F32");
    ptrs.push_back(g.as<const float>());
    sizes.push_back(g.numel());
  }
  const std::vector<AdamWChunk> chunks = adamw_chunks(sizes, kAdamWChunk);
  ArenaScope scope(ctx.scratch());
  double* partial = ctx.scratch().alloc<double>(std::max<int64_t>(1, static_cast<int64_t>(chunks.size())));
  if (!chunks.empty()) {
    const float* const* d_ptrs = to_scratch(ptrs, ctx);
    const AdamWChunk* d_chunks = to_scratch(chunks, ctx);
    sumsq_kernel<<<static_cast<unsigned>(chunks.size()), kThreads, 0, ctx.stream()>>>(d_ptrs, d_chunks, partial);
    CLIPKIT_LAUNCH_CHECK(sumsq_kernel);
  }
  finish_norm_kernel<<<1, 1, 0, ctx.stream()>>>(partial, static_cast<int64_t>(chunks.size()), total);
  CLIPKIT_LAUNCH_CHECK(finish_norm_kernel);
}

}  // namespace clipkit::cuda
