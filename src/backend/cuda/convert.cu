#include "backend/cuda/convert.h"

#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda {

namespace {
template <typename From, typename To>
__global__ void convert_kernel(const From* x, To* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dev::store(y + i, dev::load(x + i));
}

template <typename From, typename To>
void convert(const From* x, To* y, int64_t n, Context& ctx) {
  if (n <= 0) return;
  convert_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(x, y, n);
  CLIPKIT_LAUNCH_CHECK(convert_kernel);
}
}  // namespace

void to_bf16(const float* x, uint16_t* y, int64_t n, Context& ctx) { convert(x, y, n, ctx); }
void from_bf16(const uint16_t* x, float* y, int64_t n, Context& ctx) { convert(x, y, n, ctx); }

}  // namespace clipkit::cuda
