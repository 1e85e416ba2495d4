// General products on host memory for the CPU kernels (and the apps' block similarity search).
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

// C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major, fp32 (oneDNN sgemm).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// C [M, N] = op(A) @ op(B) + beta * C, row-major; beta is 0 or 1. fp32 = sgemm; bf16 = oneDNN matmul
// on bf16 copies of A and B.
void gemm(Precision p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Round-to-nearest-even fp32 -> bf16 conversion of n values (threaded).
void to_bf16(const float* x, uint16_t* y, int64_t n);

// GFLOP/s of a large matmul (a ViT-B MLP at batch 32: 1600 x 768 x 3072) through the inference
// path in this precision, best of 5 timed rounds.
double matmul_peak_gflops(Precision p);

}  // namespace clipkit::backend::cpu
