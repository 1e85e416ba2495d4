// The float64 references of the activations and their derivatives that the backend and CPU kernel
// tests check against. Written so that they keep their digits where the textbook forms cancel
// (gelu and gelu_new for x << 0).
#pragma once
#include <cmath>

#include "backend/backend.h"

namespace clipkit::test {

inline double act_ref(double x, backend::Act a) {
  using backend::Act;
  switch (a) {
    case Act::QuickGelu: return x / (1 + std::exp(-1.702 * x));
    case Act::Gelu: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case Act::GeluNew: {  // 0.5 x (1 + tanh u) = x / (1 + e^{-2u})
      const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
      return x / (1 + std::exp(-2 * u));
    }
    case Act::Relu: return x > 0 ? x : 0;
    case Act::Tanh: return std::tanh(x);
    case Act::None: return x;
  }
  return 0;
}

// act'(x), analytic
inline double act_grad_ref(double x, backend::Act a) {
  using backend::Act;
  switch (a) {
    case Act::QuickGelu: {
      const double s = 1 / (1 + std::exp(-1.702 * x));
      return s + 1.702 * x * s * (1 - s);
    }
    case Act::Gelu: return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    case Act::GeluNew: {  // with s = sigmoid(2u): 0.5 (1 + tanh u) = s, 1 - tanh^2 u = 4 s (1 - s)
      const double c = std::sqrt(2 / M_PI), u = c * (x + 0.044715 * x * x * x), s = 1 / (1 + std::exp(-2 * u));
      return s + 0.5 * x * 4 * s * (1 - s) * c * (1 + 3 * 0.044715 * x * x);
    }
    case Act::Relu: return x > 0 ? 1 : 0;
    case Act::Tanh: return 1 - std::tanh(x) * std::tanh(x);
    case Act::None: return 1;
  }
  return 0;
}

}  // namespace clipkit::test
