#include "backend/cuda/optimizer.h"

#include <cmath>
#include <string>

#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda {

namespace {

constexpr int kThreads = 256;

struct Entry {
  float *w, *g, *m, *v;
  int decay;
};

// The host-side scalars of train::AdamW::step, computed the same way.
struct Scalars {
  float step_size, bc2_sqrt, b2, c1, c2, eps, decay;
};

__global__ void adamw_kernel(const Entry* params, const AdamW::Chunk* chunks, Scalars sc, double grad_scale,
                             const double* total_norm, double max_norm) {
  const AdamW::Chunk ch = chunks[blockIdx.x];
  const Entry e = params[ch.param];
  double coef = grad_scale;  // train::clip_coefficient
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

__global__ void sumsq_kernel(const Entry* params, const AdamW::Chunk* chunks, double* partial) {
  const AdamW::Chunk ch = chunks[blockIdx.x];
  const float* g = params[ch.param].g;
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

}  // namespace

std::vector<AdamW::Chunk> AdamW::chunks_of(const std::vector<train::Param>& params, int64_t chunk) {
  std::vector<Chunk> out;
  for (size_t i = 0; i < params.size(); ++i)
    for (int64_t b = 0; b < params[i].n; b += chunk)
      out.push_back({static_cast<int32_t>(i), b, std::min(chunk, params[i].n - b)});
  return out;
}

AdamW::AdamW(std::vector<train::Param> params, train::AdamWConfig c, Context& ctx) : params_(std::move(params)), c_(c) {
  int64_t total = 0;
  for (const train::Param& p : params_) {
    if (p.n < 0 || (p.n > 0 && (!p.w || !p.g))) fail_msg("cuda AdamW: parameter " + p.name + " has no weights or gradient");
    offsets_.push_back(total);
    total += p.n;
  }
  m_ = DeviceBuffer(sizeof(float) * total);
  v_ = DeviceBuffer(sizeof(float) * total);
  fill_zero(m_.data(), m_.bytes(), ctx.stream());
  fill_zero(v_.data(), v_.bytes(), ctx.stream());
  std::vector<Entry> entries;
  for (size_t i = 0; i < params_.size(); ++i)
    entries.push_back({params_[i].w, params_[i].g, exp_avg(i), exp_avg_sq(i), params_[i].decay ? 1 : 0});
  const std::vector<Chunk> chunks = chunks_of(params_, kChunk);
  n_chunks_ = static_cast<int64_t>(chunks.size());
  const size_t eb = sizeof(Entry) * entries.size(), cb = sizeof(Chunk) * chunks.size();
  table_ = DeviceBuffer(eb + cb);
  copy_to_device(table_.data(), entries.data(), eb, ctx.stream());
  copy_to_device(static_cast<char*>(table_.data()) + eb, chunks.data(), cb, ctx.stream());
  partial_ = DeviceBuffer(sizeof(double) * std::max<int64_t>(1, n_chunks_));
  ctx.sync();  // the host tables above go out of scope
}

void AdamW::launch(double lr, double grad_scale, const double* total_norm, double max_norm, Context& ctx) {
  ++t_;
  const double bc1 = 1.0 - std::pow(c_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(c_.beta2, static_cast<double>(t_));
  const float b1 = static_cast<float>(c_.beta1), b2 = static_cast<float>(c_.beta2);
  Scalars sc;
  sc.step_size = static_cast<float>(lr / bc1);
  sc.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  sc.b2 = b2;
  sc.c1 = 1.0f - b1;
  sc.c2 = 1.0f - b2;
  sc.eps = static_cast<float>(c_.eps);
  sc.decay = static_cast<float>(1.0 - lr * c_.weight_decay);
  if (n_chunks_ == 0) return;
  const auto* entries = static_cast<const Entry*>(table_.data());
  const auto* chunks = reinterpret_cast<const Chunk*>(static_cast<const char*>(table_.data()) + sizeof(Entry) * params_.size());
  adamw_kernel<<<static_cast<unsigned>(n_chunks_), kThreads, 0, ctx.stream()>>>(entries, chunks, sc, grad_scale,
                                                                                total_norm, max_norm);
  CLIPKIT_LAUNCH_CHECK(adamw_kernel);
}

void AdamW::step(double lr, double grad_scale, Context& ctx) { launch(lr, grad_scale, nullptr, 0.0, ctx); }

void AdamW::step_clipped(double lr, const double* total_norm, double max_norm, Context& ctx) {
  launch(lr, 1.0, total_norm, max_norm, ctx);
}

void AdamW::grad_norm(double* total, Context& ctx) const {
  const auto* entries = static_cast<const Entry*>(table_.data());
  const auto* chunks = reinterpret_cast<const Chunk*>(static_cast<const char*>(table_.data()) + sizeof(Entry) * params_.size());
  if (n_chunks_ > 0) {
    sumsq_kernel<<<static_cast<unsigned>(n_chunks_), kThreads, 0, ctx.stream()>>>(entries, chunks, partial_.as<double>());
    CLIPKIT_LAUNCH_CHECK(sumsq_kernel);
  }
  finish_norm_kernel<<<1, 1, 0, ctx.stream()>>>(partial_.as<double>(), n_chunks_, total);
  CLIPKIT_LAUNCH_CHECK(finish_norm_kernel);
}

}  // namespace clipkit::cuda
