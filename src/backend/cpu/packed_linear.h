// The inference linear layer: y [M, N] = act(x [M, K] @ W^T + b) (+ y) through oneDNN matmul, with
// W [N, K] (PyTorch layout) reordered once into the layout oneDNN picks (converted to bf16 for bf16
// precision) and the bias, activation and residual add fused as post-ops. Primitives are cached
// per (M, epilogue); packed weights per layout (normally one; none where the kernel wants plain
// fp32 weights, as AVX2's gemm:jit does: it reads W in place as W^T in "ba" order). W and b are
// read, not copied: they must outlive this object and not change (a change of the master makes a
// new PackedLinear).
// INT8: W is quantized once per output channel, symmetric in int8, and x per row on every call,
// asymmetric in uint8 (quantize.h); oneDNN multiplies u8 x s8 into exact int32 sums, and
// act_forward_dequant takes off the zero points (row zero x column sum of Wq), applies both scales,
// the bias, the activation and the residual (oneDNN 2.6 has no fast per-row scale post-op).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

class PackedLinear {
 public:
  PackedLinear(const float* W, const float* bias, int64_t N, int64_t K, Precision p);
  PackedLinear(const PackedLinear&) = delete;
  PackedLinear& operator=(const PackedLinear&) = delete;
  ~PackedLinear();

  // y = act(x W^T + b), or y += act(x W^T + b) with accumulate (oneDNN's sum post-op). x is fp32
  // (converted to bf16 / quantized to int8 per call for bf16 / int8 precision).
  void forward(const float* x, int64_t M, float* y, Act act = Act::None, bool accumulate = false) const;

 private:
  struct Impl;
  const float* W_;
  const float* b_;
  int64_t N_, K_;
  Precision prec_;
  mutable std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
};

}  // namespace clipkit::backend::cpu
