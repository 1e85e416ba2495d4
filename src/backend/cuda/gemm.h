// GEMMs through cuBLASLt, row-major as on the CPU (backend/cpu/gemm.h, backend/cpu/matmul_bf16.h), fp32 accumulation:
//   C [M, N] = epilogue(op(A) @ op(B))
// A's storage is (trans_a ? K x lda : M x lda); B's is (trans_b ? N x ldb : K x ldb); C is M x ldc.
// A and B are both F32 (true fp32 arithmetic, no TF32: what HF fp32 computes on a GPU) or both BF16;
// C is F32 or BF16. Batched: `count` products at element strides stride_a/b/c (the attention's).
// cuBLASLt's algorithm for each problem (shapes, types, epilogue, pointer alignments) is chosen once
// by its heuristic and cached in the Context; its workspace is the Context's.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"
#include "core/tensor.h"

namespace clipkit::cuda {

// What is fused after the product, in this order:
//   v = op(A) @ op(B) + bias          (bias [N], broadcast over rows)
//   preact = v                        (optional, fp32 [M, N] contiguous: the activation's backward input)
//   v = act(v)                        (activate)
//   C = v (+ C when accumulate)       (accumulate: the residual add, beta = 1; not with activate)
//   bias_grad [M] (+)= sum_k op(A)[i, k]   (trans_a only: the dW = dy^T x product's db = column sums of dy)
// cuBLASLt fuses bias, relu and gelu_new (its GELU is the tanh form), the residual add and the bias
// gradient; quick_gelu, gelu (erf) and the preact copy run as one elementwise kernel after it, and
// so does any epilogue cuBLASLt declines for a problem.
struct Epilogue {
  const float* bias = nullptr;
  bool activate = false;
  backend::Act act = backend::Act::QuickGelu;
  float* preact = nullptr;
  bool accumulate = false;
  float* bias_grad = nullptr;
  bool accumulate_bias_grad = false;
};

struct Batch {
  int64_t count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // in elements
};

void gemm(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda,
          const void* B, int64_t ldb, DType ab_type, void* C, int64_t ldc, DType c_type, const Epilogue& e = {},
          const Batch& batch = {});

// --- the old CPU ops' signatures (same argument meanings), with the Context last ---
// gemm: C = op(A) op(B) + beta C (beta 0 or 1), fp32 operands; BF16 rounds copies of A and B.
void gemm(backend::Precision p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Context& ctx);
// matmul_bf16_to_bf16 / weight_grad_bf16
void matmul_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                 const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, Context& ctx);
void matmul_bf16_to_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                         const uint16_t* B, int64_t ldb, uint16_t* C, int64_t ldc, const float* bias, Context& ctx);
void weight_grad_bf16(int64_t M, int64_t N, int64_t K, const uint16_t* dy, const uint16_t* x, float* dW, Context& ctx);
// dense_forward / dense_backward (fp32) and their bf16 forms (operands converted by the caller;
// dense_backward_bf16 converts dy once, into scratch, for both dx and dW).
void dense_forward(const float* x, const float* W, const float* b, int64_t M, int64_t N, int64_t K, float* y,
                   Context& ctx);
void dense_backward(const float* x, const float* W, const float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                    float* dW, float* db, bool accumulate_dx, bool accumulate_grads, Context& ctx);
void dense_forward_bf16(const uint16_t* xb, const uint16_t* Wb, const float* b, int64_t M, int64_t N, int64_t K,
                        float* y, Context& ctx);
void dense_forward_bf16_out(const uint16_t* xb, const uint16_t* Wb, const float* b, int64_t M, int64_t N, int64_t K,
                            uint16_t* yb, Context& ctx);
void dense_backward_bf16(const uint16_t* xb, const uint16_t* Wb, const float* dy, int64_t M, int64_t N, int64_t K,
                         float* dx, float* dW, float* db, bool accumulate_dx, bool accumulate_grads, Context& ctx);

// --- internals, exposed for the host-side tests ---
// The column-major cuBLASLt problem that computes the row-major C = op(A) op(B): C^T = op(B)^T op(A)^T,
// so cuBLASLt's A is our B and its B is our A. rows/cols/ld describe each matrix as stored.
struct LtProblem {
  bool trans_a = false, trans_b = false;  // cuBLASLt's opA / opB
  int64_t m = 0, n = 0, k = 0;
  int64_t a_rows = 0, a_cols = 0, lda = 0;
  int64_t b_rows = 0, b_cols = 0, ldb = 0;
  int64_t c_rows = 0, c_cols = 0, ldc = 0;
};
LtProblem lt_problem(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc);
// The largest power of two (<= 256) dividing the address: what cuBLASLt may assume of a pointer.
int pointer_alignment(const void* p);

}  // namespace clipkit::cuda
