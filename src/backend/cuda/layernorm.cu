#include "backend/cuda/layernorm.h"

#include "backend/cuda/column_reduce.cuh"

namespace clipkit::cuda {

namespace {

constexpr int kWarps = 8;  // rows per block

template <typename Out>
__global__ void layernorm_fwd_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                     const float* __restrict__ beta, Out* __restrict__ y, float* __restrict__ y32,
                                     int64_t M, int64_t C, float eps, float* mean_out, float* rstd_out) {
  const int64_t row = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= M) return;
  const float* xr = x + row * C;
  float s = 0;
  for (int64_t c = lane; c < C; c += 32) s += xr[c];
  const float mean = dev::warp_sum(s) / static_cast<float>(C);
  float v = 0;
  for (int64_t c = lane; c < C; c += 32) {
    const float d = xr[c] - mean;
    v += d * d;
  }
  const float rstd = 1.0f / sqrtf(dev::warp_sum(v) / static_cast<float>(C) + eps);
  for (int64_t c = lane; c < C; c += 32) {
    const float o = (xr[c] - mean) * rstd * gamma[c] + beta[c];
    dev::store(y + row * C + c, o);
    if (y32) y32[row * C + c] = o;
  }
  if (lane == 0) {
    if (mean_out) mean_out[row] = mean;
    if (rstd_out) rstd_out[row] = rstd;
  }
}

__global__ void layernorm_bwd_dx_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                        const float* __restrict__ gamma, const float* __restrict__ mean,
                                        const float* __restrict__ rstd, float* __restrict__ dx, int64_t M, int64_t C) {
  const int64_t row = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= M) return;
  const float* dyr = dy + row * C;
  const float* xr = x + row * C;
  const float mu = mean[row], rs = rstd[row];
  float s1 = 0, s2 = 0;
  for (int64_t c = lane; c < C; c += 32) {
    const float xh = (xr[c] - mu) * rs, dxh = dyr[c] * gamma[c];
    s1 += dxh;
    s2 += dxh * xh;
  }
  const float m1 = dev::warp_sum(s1) / static_cast<float>(C), m2 = dev::warp_sum(s2) / static_cast<float>(C);
  for (int64_t c = lane; c < C; c += 32) {
    const float xh = (xr[c] - mu) * rs;
    dx[row * C + c] = rs * (dyr[c] * gamma[c] - m1 - xh * m2);
  }
}

// partial [chunk, c] of dgamma (sum dy xhat) and dbeta (sum dy) over a chunk of rows
__global__ void layernorm_bwd_params_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                            const float* __restrict__ mean, const float* __restrict__ rstd, int64_t M,
                                            int64_t C, float* pg, float* pb) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= C) return;
  const int64_t r0 = blockIdx.y * dev::kChunkRows, r1 = min(M, r0 + dev::kChunkRows);
  float g = 0, b = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const float d = dy[r * C + c];
    g += d * ((x[r * C + c] - mean[r]) * rstd[r]);
    b += d;
  }
  pg[blockIdx.y * C + c] = g;
  pb[blockIdx.y * C + c] = b;
}

template <typename Out>
void forward(const float* x, const float* gamma, const float* beta, Out* y, float* y32, int64_t M, int64_t C, float eps,
             float* mean_out, float* rstd_out, Context& ctx) {
  if (M <= 0 || C <= 0) return;
  layernorm_fwd_kernel<<<static_cast<unsigned>((M + kWarps - 1) / kWarps), 32 * kWarps, 0, ctx.stream()>>>(
      x, gamma, beta, y, y32, M, C, eps, mean_out, rstd_out);
  CLIPKIT_LAUNCH_CHECK(layernorm_fwd_kernel);
}

}  // namespace

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, int64_t M, int64_t C, float eps,
                       float* mean_out, float* rstd_out, Context& ctx) {
  forward(x, gamma, beta, y, static_cast<float*>(nullptr), M, C, eps, mean_out, rstd_out, ctx);
}

void layernorm_forward_bf16(const float* x, const float* gamma, const float* beta, uint16_t* y, int64_t M, int64_t C,
                            float eps, float* mean_out, float* rstd_out, Context& ctx, float* y_f32) {
  forward(x, gamma, beta, y, y_f32, M, C, eps, mean_out, rstd_out, ctx);
}

void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                        float* dx, float* dgamma, float* dbeta, int64_t M, int64_t C, Context& ctx) {
  if (M <= 0 || C <= 0) return;
  layernorm_bwd_dx_kernel<<<static_cast<unsigned>((M + kWarps - 1) / kWarps), 32 * kWarps, 0, ctx.stream()>>>(
      dy, x, gamma, mean, rstd, dx, M, C);
  CLIPKIT_LAUNCH_CHECK(layernorm_bwd_dx_kernel);
  const int64_t chunks = dev::row_chunks(M);
  ArenaScope scope(ctx.scratch());
  float* pg = ctx.scratch().alloc<float>(chunks * C);
  float* pb = ctx.scratch().alloc<float>(chunks * C);
  const dim3 grid(static_cast<unsigned>((C + dev::kColThreads - 1) / dev::kColThreads), static_cast<unsigned>(chunks));
  layernorm_bwd_params_kernel<<<grid, dev::kColThreads, 0, ctx.stream()>>>(dy, x, mean, rstd, M, C, pg, pb);
  CLIPKIT_LAUNCH_CHECK(layernorm_bwd_params_kernel);
  dev::finish_columns(pg, chunks, C, dgamma, true, ctx.stream());
  dev::finish_columns(pb, chunks, C, dbeta, true, ctx.stream());
}

}  // namespace clipkit::cuda
