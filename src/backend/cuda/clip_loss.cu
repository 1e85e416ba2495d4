#include "backend/cuda/clip_loss.h"

#include <cublas_v2.h>

#include "backend/cuda/blas.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

constexpr int kThreads = 256;

// blockIdx.y = 0: image rows, 1: text rows. u = x / |x| (double), n = |x|
__global__ void normalize_kernel(const float* img, const float* txt, int64_t P, double* a, double* b, double* na,
                                 double* nb) {
  const bool image = blockIdx.y == 0;
  const float* x = (image ? img : txt) + blockIdx.x * P;
  double* u = (image ? a : b) + blockIdx.x * P;
  double s = 0;
  for (int64_t k = threadIdx.x; k < P; k += kThreads) s += static_cast<double>(x[k]) * x[k];
  const double n = sqrt(dev::block_sum<kThreads>(s));
  for (int64_t k = threadIdx.x; k < P; k += kThreads) u[k] = x[k] / n;
  if (threadIdx.x == 0) (image ? na : nb)[blockIdx.x] = n;
}

// blockIdx.y = 0: row j (text -> image CE, G = ...), 1: column i (image -> text CE, G += ...),
// over L = exp(s) cos; one block per row or column. Rows run before columns (two launches).
__global__ void softmax_ce_kernel(const double* cos, const float* logit_scale, int64_t B, double* G, double* terms,
                                  bool columns) {
  const double scale = exp(static_cast<double>(*logit_scale));
  const int64_t r = blockIdx.x;
  auto idx = [&](int64_t t) { return columns ? t * B + r : r * B + t; };  // element t of row/column r
  double mx = -1e300;
  for (int64_t t = threadIdx.x; t < B; t += kThreads) mx = fmax(mx, scale * cos[idx(t)]);
  __shared__ double red[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
  __syncthreads();
  mx = red[0];
  for (int w = 1; w < kThreads / 32; ++w) mx = fmax(mx, red[w]);
  double s = 0;
  for (int64_t t = threadIdx.x; t < B; t += kThreads) s += exp(scale * cos[idx(t)] - mx);
  s = dev::block_sum<kThreads>(s);
  const double inv2b = 1.0 / (2.0 * static_cast<double>(B));
  for (int64_t t = threadIdx.x; t < B; t += kThreads) {
    const double g = (exp(scale * cos[idx(t)] - mx) / s - (t == r ? 1.0 : 0.0)) * inv2b;
    G[idx(t)] = columns ? G[idx(t)] + g : g;
  }
  if (threadIdx.x == 0) terms[(columns ? B : 0) + r] = (log(s) + mx - scale * cos[r * B + r]) * inv2b;
}

// result = {sum of the 2B loss terms in order, sum_n G[n] L[n]} (one block: a fixed order)
__global__ void finish_kernel(const double* terms, const double* G, const double* cos, const float* logit_scale,
                              int64_t B, double* result) {
  const double scale = exp(static_cast<double>(*logit_scale));
  double d = 0;
  for (int64_t n = threadIdx.x; n < B * B; n += kThreads) d += G[n] * (scale * cos[n]);
  d = dev::block_sum<kThreads>(d);
  if (threadIdx.x == 0) {
    double loss = 0;
    for (int64_t t = 0; t < 2 * B; ++t) loss += terms[t];
    result[0] = loss;
    result[1] = d;
  }
}

// out = (du - u (u . du)) / n with du = exp(s) * dsum: back through x -> x / |x|
__global__ void project_kernel(const double* u_all, const double* dsum_all, const double* norms,
                               const float* logit_scale, int64_t P, float* out) {
  const double scale = exp(static_cast<double>(*logit_scale));
  const double* u = u_all + blockIdx.x * P;
  const double* ds = dsum_all + blockIdx.x * P;
  double dot = 0;
  for (int64_t k = threadIdx.x; k < P; k += kThreads) dot += u[k] * (scale * ds[k]);
  dot = dev::block_sum<kThreads>(dot);
  const double inv = 1.0 / norms[blockIdx.x];
  for (int64_t k = threadIdx.x; k < P; k += kThreads)
    out[blockIdx.x * P + k] = static_cast<float>((scale * ds[k] - u[k] * dot) * inv);
}

}  // namespace

void clip_loss(const float* img, const float* txt, int64_t B, int64_t P, const float* logit_scale, float* dimg,
               float* dtxt, double* result, Context& ctx) {
  if (B <= 0 || P <= 0) fail_msg("cuda clip_loss: empty batch");
  if (B > INT32_MAX / 2 || P > INT32_MAX) fail_msg("cuda clip_loss: batch too large");
  DeviceArena& ws = ctx.scratch();
  ArenaScope scope(ws);
  double* a = ws.alloc<double>(B * P);
  double* b = ws.alloc<double>(B * P);
  double* na = ws.alloc<double>(B);
  double* nb = ws.alloc<double>(B);
  double* cos = ws.alloc<double>(B * B);
  double* G = ws.alloc<double>(B * B);
  double* terms = ws.alloc<double>(2 * B);
  const cudaStream_t s = ctx.stream();
  normalize_kernel<<<dim3(static_cast<unsigned>(B), 2), kThreads, 0, s>>>(img, txt, P, a, b, na, nb);
  CLIPKIT_LAUNCH_CHECK(normalize_kernel);
  // cos [text j, image i] = b_j . a_i (row-major b a^T; cuBLAS is column-major: cos^T = a b^T)
  const int n = static_cast<int>(B), p = static_cast<int>(P);
  const double one = 1.0, zero = 0.0;
  cublasHandle_t h = ctx.blas().handle;
  CLIPKIT_CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, p, &one, a, p, b, p, &zero, cos, n));
  softmax_ce_kernel<<<static_cast<unsigned>(B), kThreads, 0, s>>>(cos, logit_scale, B, G, terms, false);
  CLIPKIT_LAUNCH_CHECK(softmax_ce_kernel);
  softmax_ce_kernel<<<static_cast<unsigned>(B), kThreads, 0, s>>>(cos, logit_scale, B, G, terms, true);
  CLIPKIT_LAUNCH_CHECK(softmax_ce_kernel);
  finish_kernel<<<1, kThreads, 0, s>>>(terms, G, cos, logit_scale, B, result);
  CLIPKIT_LAUNCH_CHECK(finish_kernel);
  double* dsum = ws.alloc<double>(B * P);
  if (dimg) {  // dsum_i = sum_j G[j, i] b_j: row-major G^T b
    CLIPKIT_CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, p, n, n, &one, b, p, G, n, &zero, dsum, p));
    project_kernel<<<static_cast<unsigned>(B), kThreads, 0, s>>>(a, dsum, na, logit_scale, P, dimg);
    CLIPKIT_LAUNCH_CHECK(project_kernel);
  }
  if (dtxt) {  // dsum_j = sum_i G[j, i] a_i: row-major G a
    CLIPKIT_CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, p, n, n, &one, a, p, G, n, &zero, dsum, p));
    project_kernel<<<static_cast<unsigned>(B), kThreads, 0, s>>>(b, dsum, nb, logit_scale, P, dtxt);
    CLIPKIT_LAUNCH_CHECK(project_kernel);
  }
}

backend::ClipLossResult read_clip_loss(const double* result, Context& ctx) {
  double r[2];
  copy_to_host(r, result, sizeof(r), ctx.stream());
  ctx.sync();
  backend::ClipLossResult out;
  out.loss = r[0];
  out.dlogit_scale = r[1];
  return out;
}

}  // namespace clipkit::cuda
