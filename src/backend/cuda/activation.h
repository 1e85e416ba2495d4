// Activations on the device, elementwise over n floats, with the CPU backend's formulas and
// argument meanings (backend/cpu/activation.h):
//   quick_gelu(x) = x sigmoid(1.702 x)   gelu(x) = x (1 + erf(x / sqrt 2)) / 2
//   gelu_new(x)   = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2   relu(x) = max(x, 0)
//   tanh(x)       none(x) = x
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

void act_forward(const float* x, float* y, int64_t n, backend::Act a, Context& ctx);  // y may be x
// y = bf16(act(x)): the input of the next bf16 matmul
void act_forward_bf16(const float* x, uint16_t* y, int64_t n, backend::Act a, Context& ctx);
// dx = dy * act'(x), x the pre-activation input; dx may be dy
void act_backward(const float* x, const float* dy, float* dx, int64_t n, backend::Act a, Context& ctx);

}  // namespace clipkit::cuda
