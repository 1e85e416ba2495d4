#include "backend/cuda/activation.h"

#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda {

namespace {

template <typename Out>
__global__ void act_fwd_kernel(const float* x, Out* y, int64_t n, backend::Act a) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dev::store(y + i, dev::act_forward(x[i], a));
}

__global__ void act_bwd_kernel(const float* x, const float* dy, float* dx, int64_t n, backend::Act a) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dx[i] = dy[i] * dev::act_grad(x[i], a);
}

}  // namespace

void act_forward(const float* x, float* y, int64_t n, backend::Act a, Context& ctx) {
  if (n <= 0) return;
  act_fwd_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(x, y, n, a);
  CLIPKIT_LAUNCH_CHECK(act_fwd_kernel);
}

void act_forward_bf16(const float* x, uint16_t* y, int64_t n, backend::Act a, Context& ctx) {
  if (n <= 0) return;
  act_fwd_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(x, y, n, a);
  CLIPKIT_LAUNCH_CHECK(act_fwd_kernel);
}

void act_backward(const float* x, const float* dy, float* dx, int64_t n, backend::Act a, Context& ctx) {
  if (n <= 0) return;
  act_bwd_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(x, dy, dx, n, a);
  CLIPKIT_LAUNCH_CHECK(act_bwd_kernel);
}

}  // namespace clipkit::cuda
