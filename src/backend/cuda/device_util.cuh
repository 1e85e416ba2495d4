// Helpers shared by the .cu files (device code only): element loads/stores in fp32 or bf16 (the
// rounding of core/tensor.h, called directly), warp reductions, grid sizes, and the activations
// with the CPU's formulas (backend/cpu/activation.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/check.h"
#include "core/tensor.h"

namespace clipkit::cuda::dev {

// bf16 values travel as uint16_t, as on the CPU
__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const uint16_t* p) { return bf16_to_f32(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(uint16_t* p, float v) { *p = f32_to_bf16(v); }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of kThreads (a multiple of 32), in a fixed order; the result is valid in every thread.
template <int kThreads, typename T>
__device__ T block_sum(T v) {
  __shared__ T part[kThreads / 32];
  v = warp_sum(v);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  T s = 0;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) s += part[w];
  return s;
}

// Grid of a grid-stride loop over n items: enough blocks to fill an H200 several times over.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 8192 ? 8192 : b));
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;

__device__ __forceinline__ float act_forward(float x, backend::Act a) {
  switch (a) {
    case backend::Act::QuickGelu: return x / (1.0f + expf(-1.702f * x));
    case backend::Act::Gelu: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    case backend::Act::GeluNew: return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case backend::Act::Relu: return x > 0 ? x : 0.0f;
    case backend::Act::Tanh: return tanhf(x);
    case backend::Act::None: return x;
  }
  return x;
}

// d act / dx at x
__device__ __forceinline__ float act_grad(float v, backend::Act a) {
  switch (a) {
    case backend::Act::QuickGelu: {
      const float s = 1.0f / (1.0f + expf(-1.702f * v));
      return s + 1.702f * v * s * (1.0f - s);
    }
    case backend::Act::Gelu: {
      const float cdf = 0.5f * (1.0f + erff(v * kInvSqrt2));
      const float pdf = expf(-0.5f * v * v) * 0.3989422804014327f;
      return cdf + v * pdf;
    }
    case backend::Act::GeluNew: {
      const float u = kSqrt2OverPi * (v + 0.044715f * v * v * v);
      const float t = tanhf(u);
      return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * v * v);
    }
    case backend::Act::Relu: return v > 0 ? 1.0f : 0.0f;
    case backend::Act::Tanh: {
      const float t = tanhf(v);
      return 1.0f - t * t;
    }
    case backend::Act::None: return 1.0f;
  }
  return 1.0f;
}

}  // namespace clipkit::cuda::dev
