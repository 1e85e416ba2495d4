// fp32 <-> bf16 on the device, round-to-nearest-even with core/tensor.h's f32_to_bf16 itself (NaN
// stays a quiet NaN with its sign and top payload bits): bit-identical to the CPU backend's.
//   y [n] = bf16(x [n])         x [n] = float(y [n])
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"

namespace clipkit::cuda {

void to_bf16(const float* x, uint16_t* y, int64_t n, Context& ctx);
void from_bf16(const uint16_t* x, float* y, int64_t n, Context& ctx);

}  // namespace clipkit::cuda
