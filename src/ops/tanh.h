// Elementwise tanh (the RoBERTa pooler's activation) and its gradient.
#pragma once
#include <cstdint>

namespace clipkit::ops {

void tanh_forward(const float* x, float* y, int64_t n);  // may alias
// dx = dy * (1 - y^2), from the saved output y. dx may alias dy.
void tanh_backward(const float* y, const float* dy, float* dx, int64_t n);

}  // namespace clipkit::ops
