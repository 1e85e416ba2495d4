#include "backend/cuda/dropout.h"

#include <string>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {
__global__ void dropout_kernel(const float* x, float* y, int64_t R, int64_t C, const int32_t* row_ids, float p,
                               float keep_scale, uint64_t stream) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < R * C; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / C, c = i % C;
    const float f = dropout_factor(stream, static_cast<uint64_t>((row_ids ? row_ids[r] : r) * C + c), p, keep_scale);
    y[i] = f == 0.0f ? 0.0f : x[i] * f;  // a dropped element is exactly 0, whatever x holds
  }
}
}  // namespace

float dropout_keep_scale(float p) {
  if (!(p >= 0 && p <= 1)) fail_msg("dropout probability must be in [0, 1], got " + std::to_string(p));
  return p < 1 ? 1.0f / (1.0f - p) : 0.0f;
}

void dropout_apply(const float* x, float* y, int64_t R, int64_t C, const int32_t* row_ids, float p, uint64_t seed,
                   uint64_t site, Context& ctx) {
  const float keep_scale = dropout_keep_scale(p);
  if (R <= 0 || C <= 0) return;
  if (p == 0) {  // off: as the CPU, which returns without touching x
    if (x != y) copy_on_device(y, x, sizeof(float) * R * C, ctx.stream());
    return;
  }
  dropout_kernel<<<dev::grid_for(R * C, 256), 256, 0, ctx.stream()>>>(x, y, R, C, row_ids, p, keep_scale,
                                                                       backend::dropout_stream(seed, site));
  CLIPKIT_LAUNCH_CHECK(dropout_kernel);
}

}  // namespace clipkit::cuda
