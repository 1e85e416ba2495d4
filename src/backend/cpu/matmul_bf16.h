// bf16 matmuls on operands already rounded to bf16 (stored as uint16_t), with fp32 accumulation
// and fp32 output, through cached oneDNN primitives (to_bf16 in backend/cpu/gemm.h converts). The
// training path converts each operand once and reuses it (weights for forward and dx, activations
// for forward and dW, upstream gradients for dx and dW). Where bf16 products do not run on bf16
// kernels (bf16_matmul_native() false: no AVX512_BF16, or half-rate bf16 as on Xeons without AMX)
// the same products run as sgemm on fp32 copies of the bf16 values: exact products, fp32 sums.
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

// C [M, N] = op(A) @ op(B) (+ bias [N] broadcast over rows) + beta * C, row-major, beta 0 or 1.
// A's storage is (trans_a ? K x lda : M x lda); B's is (trans_b ? N x ldb : K x ldb).
void matmul_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                 const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias = nullptr);
// The same with C written as bf16 (the fp32 result plus bias, rounded to nearest even; beta 0), for a
// product whose only consumer reads bf16.
void matmul_bf16_to_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                         const uint16_t* B, int64_t ldb, uint16_t* C, int64_t ldc, const float* bias = nullptr);

// dW [N, K] = dy^T @ x, overwritten, for contiguous dy [M, N] and x [M, K] in bf16: oneDNN's
// inner-product weight gradient, which packs the transposed operand itself and runs faster than
// matmul_bf16 reading dy transposed (bench/weight_grad_bench). It cannot accumulate: use it for a
// gradient's first write of a step.
void weight_grad_bf16(int64_t M, int64_t N, int64_t K, const uint16_t* dy, const uint16_t* x, float* dW);

}  // namespace clipkit::backend::cpu
