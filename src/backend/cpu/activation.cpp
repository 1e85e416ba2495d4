#include "backend/cpu/activation.h"

#include <cmath>

#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::backend::cpu {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
}  // namespace

void act_forward(const float* x, float* y, int64_t n, Act a) {
  ProfileScope prof("act fwd");
  parallel_for(n, [&](int64_t b, int64_t e) {
    switch (a) {
      case Act::QuickGelu:
        for (int64_t i = b; i < e; ++i) y[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
        break;
      case Act::Gelu:
        for (int64_t i = b; i < e; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
        break;
      case Act::GeluNew:
        for (int64_t i = b; i < e; ++i) {
          float v = x[i];
          y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
        }
        break;
      case Act::Relu:
        for (int64_t i = b; i < e; ++i) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
      case Act::Tanh:
        for (int64_t i = b; i < e; ++i) y[i] = std::tanh(x[i]);
        break;
      case Act::None:
        for (int64_t i = b; i < e; ++i) y[i] = x[i];
        break;
    }
  }, 4096);
}

void act_backward(const float* x, const float* dy, float* dx, int64_t n, Act a) {
  ProfileScope prof("act bwd");
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float v = x[i], g = 0;
      switch (a) {
        case Act::QuickGelu: {
          float s = 1.0f / (1.0f + std::exp(-1.702f * v));
          g = s + 1.702f * v * s * (1.0f - s);
          break;
        }
        case Act::Gelu: {
          float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
          float pdf = std::exp(-0.5f * v * v) * 0.3989422804014327f;
          g = cdf + v * pdf;
          break;
        }
        case Act::GeluNew: {
          float u = kSqrt2OverPi * (v + 0.044715f * v * v * v);
          float t = std::tanh(u);
          g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * v * v);
          break;
        }
        case Act::Relu: g = v > 0 ? 1.0f : 0.0f; break;
        case Act::Tanh: {
          const float t = std::tanh(v);
          g = 1.0f - t * t;
          break;
        }
        case Act::None: g = 1.0f; break;
      }
      dx[i] = dy[i] * g;
    }
  }, 4096);
}

}  // namespace clipkit::backend::cpu
