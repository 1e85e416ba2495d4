// Activations, in place over n floats.
//   quick_gelu(x) = x * sigmoid(1.702 x)                 (CLIP)
//   gelu(x)       = x * 0.5 * (1 + erf(x / sqrt(2)))      (RoBERTa, exact)
//   gelu_new(x)   = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#pragma once
#include <cstdint>
#include <string>

namespace clipkit::ops {

enum class Act { QuickGelu, Gelu, GeluNew, Relu };

bool act_from_name(const std::string& s, Act* out);
const char* act_name(Act a);

// y = act(x), may alias.
void act_forward(const float* x, float* y, int64_t n, Act a);
// dx = dy * act'(x)  (x is the pre-activation input)
void act_backward(const float* x, const float* dy, float* dx, int64_t n, Act a);

// The bf16 training path: vectorized approximations (relative error a few 1e-7, far below bf16
// rounding). The forward writes y = bf16(act(x)), the input of the next (bf16) matmul.
void act_forward_bf16(const float* x, uint16_t* y, int64_t n, Act a);
void act_backward_bf16(const float* x, const float* dy, float* dx, int64_t n, Act a);

}  // namespace clipkit::ops
