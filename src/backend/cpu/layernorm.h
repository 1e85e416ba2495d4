// LayerNorm over the last dimension.
//   x [M, C] -> y [M, C] = (x - mean) * rstd * gamma + beta
// Forward can save mean/rstd [M] for the backward pass.
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, int64_t M, int64_t C, float eps,
                       float* mean_out = nullptr, float* rstd_out = nullptr);

// dx (overwritten), dgamma/dbeta (accumulated) from dy, x and the saved mean/rstd.
void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                        float* dx, float* dgamma, float* dbeta, int64_t M, int64_t C);

}  // namespace clipkit::backend::cpu
