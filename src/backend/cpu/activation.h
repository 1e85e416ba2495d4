// Activation kernels over n floats, vectorized (the training path's unfused epilogues; fp32/bf16
// inference fuses them into the matmul as oneDNN post-ops, int8 inference runs act_forward_dequant).
// Relative error a few 1e-7 against the exact functions (tests/backend/cpu/activation_test.cpp).
//   quick_gelu(x) = x * sigmoid(1.702 x)   gelu(x) = x * Phi(x)   gelu_new: tanh approximation
//   relu(x) = max(x, 0)   tanh(x)
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

// y = act(x), may alias.
void act_forward(const float* x, float* y, int64_t n, Act a);
// dx = dy * act'(x)  (x is the pre-activation input; dx may alias dy)
void act_backward(const float* x, const float* dy, float* dx, int64_t n, Act a);
// The same values in the calling thread, for a pass that fuses it (a row at a time).
void act_backward_serial(const float* x, const float* dy, float* dx, int64_t n, Act a);

// The bf16 training path's forward: y = bf16(act(x)), the input of the next (bf16) matmul. (Its
// backward is act_backward: the gradient stays fp32.)
void act_forward_bf16(const float* x, uint16_t* y, int64_t n, Act a);

// The int8 matmul's epilogue, with the same vectorized activations: from the exact integer
// products acc [M, N] of uint8 activations (row scale and zero point, quantize.h) and int8 weights
// (column scale, col_sum[n] = sum of weight row n), y [M, N] = act((acc[m, n] - row_zero[m] *
// col_sum[n]) * row_scale[m] * col_scale[n] + bias[n]), or y += that with accumulate. bias may be
// null; acc may be y's own memory (int32 values in place of the floats) when not accumulating.
void act_forward_dequant(const int32_t* acc, const float* row_scale, const int32_t* row_zero, const float* col_scale,
                         const int32_t* col_sum, const float* bias, int64_t M, int64_t N, float* y, Act a,
                         bool accumulate);

}  // namespace clipkit::backend::cpu
