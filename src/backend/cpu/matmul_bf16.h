// bf16 matmuls on operands already rounded to bf16 (stored as uint16_t), with fp32 accumulation
// and fp32 output, through cached oneDNN primitives (to_bf16 in backend/cpu/gemm.h converts). The
// training path converts each operand once and reuses it (weights for forward and dx, activations
// for forward and dW, upstream gradients for dx and dW). Where bf16 products do not run on bf16
// kernels (bf16_matmul_native() false: no AVX512_BF16, or half-rate bf16 as on Xeons without AMX)
// the same products run as sgemm on fp32 copies of the bf16 values: exact products, fp32 sums.
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

// An operand's bf16 values: their bits, and optionally (where products run widened:
// bf16_matmul_native() false) the same values already widened to fp32, which the product then
// reads instead of widening the bits again. bits may be null where wide is given and the products
// run widened (the caller never made the bf16 copy); wide is ignored where they run on bf16 kernels.
struct Bf16Operand {
  Bf16Operand(const uint16_t* b) : bits(b) {}  // NOLINT(google-explicit-constructor): bits alone, as before
  Bf16Operand(const uint16_t* b, const float* w) : bits(b), wide(w) {}
  const uint16_t* bits = nullptr;
  const float* wide = nullptr;
};

// x rounded to bf16 (nearest even), n values: into bits (when not null) and, widened back to fp32,
// into wide (when not null), in one threaded pass.
void round_to_bf16(const float* x, uint16_t* bits, float* wide, int64_t n);

// x [n] rounded to bf16 in the form this CPU's products read, in one pass: for bf16 kernels the bits
// (into keep, else into workspace slot); for widened products the rounded fp32 values (into slot),
// and the bits too when the caller keeps them (keep: a saved activation).
Bf16Operand round_operand(const float* x, int64_t n, int slot, uint16_t* keep = nullptr);

// C [M, N] = op(A) @ op(B) (+ bias [N] broadcast over rows) + beta * C, row-major, beta 0 or 1.
// A's storage is (trans_a ? K x lda : M x lda); B's is (trans_b ? N x ldb : K x ldb).
void matmul_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda,
                 Bf16Operand B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias = nullptr);
// The same with C written as bf16 (the fp32 result plus bias, rounded to nearest even; beta 0), for a
// product whose only consumer reads bf16.
void matmul_bf16_to_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda,
                         Bf16Operand B, int64_t ldb, uint16_t* C, int64_t ldc, const float* bias = nullptr);

// dW [N, K] = dy^T @ x, overwritten, for contiguous dy [M, N] and x [M, K] in bf16: oneDNN's
// inner-product weight gradient, which packs the transposed operand itself and runs faster than
// matmul_bf16 reading dy transposed (bench/weight_grad_bench). It cannot accumulate: use it for a
// gradient's first write of a step.
void weight_grad_bf16(int64_t M, int64_t N, int64_t K, Bf16Operand dy, Bf16Operand x, float* dW);

}  // namespace clipkit::backend::cpu
