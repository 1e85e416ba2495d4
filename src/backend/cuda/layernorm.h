// LayerNorm over the last dimension on the device, as backend/cpu/layernorm.h:
//   x [M, C] -> y [M, C] = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps)
// One warp per row, fp32 statistics in two passes (mean, then the centered variance) like the CPU.
// mean_out / rstd_out [M] (optional) are saved for the backward pass.
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"

namespace clipkit::cuda {

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, int64_t M, int64_t C, float eps,
                       float* mean_out, float* rstd_out, Context& ctx);
// The same with y written as bf16 (the next matmul's input) and, when y_f32 is given, also as fp32.
void layernorm_forward_bf16(const float* x, const float* gamma, const float* beta, uint16_t* y, int64_t M, int64_t C,
                            float eps, float* mean_out, float* rstd_out, Context& ctx, float* y_f32 = nullptr);

// dx [M, C] (overwritten) and dgamma, dbeta [C] (accumulated, in a fixed order: deterministic) from
// dy, x and the saved mean/rstd:  dx = rstd (dy gamma - mean(dy gamma) - xhat mean(dy gamma xhat)).
void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                        float* dx, float* dgamma, float* dbeta, int64_t M, int64_t C, Context& ctx);

}  // namespace clipkit::cuda
