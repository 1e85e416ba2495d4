// Linear layer through oneDNN matmul, weights prepared once in the layout oneDNN wants.
//   x [M, K] -> y [M, N] = x @ W^T + b      (W [N, K], PyTorch layout)
// Primitives are cached per (M, epilogue); packed weights per oneDNN weight layout (normally one).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "ops/activation.h"
#include "ops/precision.h"

namespace clipkit::ops {

// What to fuse after the matmul (inference): y = act(x W^T + b) [+ y_old if accumulate].
// `accumulate` adds into y's previous contents (a residual connection) via oneDNN's sum post-op.
struct Epilogue {
  bool accumulate = false;
  bool activate = false;
  Act act = Act::QuickGelu;
};

class Linear {
 public:
  Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;
  ~Linear();

  // Copies W [N, K] and bias [N] (bias may be null). Precision picks fp32 or bf16 matmul.
  void init(const float* W, const float* bias, int64_t N, int64_t K, Precision p);
  // Re-reads the fp32 master weights after they changed (training): drops packed copies.
  void weights_changed();

  void forward(const float* x, int64_t M, float* y, const Epilogue& e = {}) const;

  int64_t in_features() const { return K_; }
  int64_t out_features() const { return N_; }
  float* weight() { return W_.data(); }   // fp32 master [N, K]
  float* bias() { return b_.empty() ? nullptr : b_.data(); }
  const float* weight() const { return W_.data(); }
  const float* bias() const { return b_.empty() ? nullptr : b_.data(); }
  Precision precision() const { return prec_; }

 private:
  struct Impl;
  int64_t N_ = 0, K_ = 0;
  Precision prec_ = Precision::F32;
  std::vector<float> W_, b_;
  mutable std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
};

// C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major, fp32 (oneDNN sgemm). For backward passes.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Round-to-nearest-even fp32 -> bf16 conversion of n values (threaded).
void to_bf16(const float* x, uint16_t* y, int64_t n);

}  // namespace clipkit::ops
