// The training linear layer: forward and backward over fp32 master weights kept in their PyTorch
// layout (they change every step), in fp32 (oneDNN sgemm) or bf16 (operands rounded to bf16, fp32
// accumulation and output).
//   y [M, N] = x [M, K] @ W^T + b          W [N, K] (PyTorch layout), b [N] or null
//   dx = dy @ W      dW += dy^T @ x       db += sum_rows dy      (or dW =, db = on a first write)
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/matmul_bf16.h"

namespace clipkit::backend::cpu {

void linear_forward(const float* x, const float* W, const float* b, int64_t M, int64_t N, int64_t K, float* y,
                    Precision p = Precision::F32);

// dx [M, K] overwritten (or added to when accumulate_dx); any of dx, dW, db may be null (skipped).
// dW and db are added to, or overwritten when !accumulate_grads (a gradient's first write of a
// step: no zeroing pass before, no read of the old values).
void linear_backward(const float* x, const float* W, const float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                     float* dW, float* db, Precision p = Precision::F32, bool accumulate_dx = false,
                     bool accumulate_grads = true);

// The bf16 training path over operands the caller converted once (matmul_bf16.h):
// xb [M, K] and Wb [N, K] hold bf16(x) and bf16(W) (as bits, or where the products run widened as
// the rounded fp32 values); forward and backward reuse them, and dy is converted once for both dx
// and dW. Same contract as above otherwise.
void linear_forward_bf16(Bf16Operand xb, Bf16Operand Wb, const float* b, int64_t M, int64_t N, int64_t K, float* y);
// The same product written as bf16 (yb = bf16(x W^T + b)), for an output that only feeds bf16 matmuls.
void linear_forward_bf16_out(Bf16Operand xb, Bf16Operand Wb, const float* b, int64_t M, int64_t N, int64_t K,
                             uint16_t* yb);
// With act (preact: the forward's pre-activation), dy is the activation's output gradient and the
// products take dy * act'(preact); dy is then scratch (overwritten with that, or left as it was
// where the activation's backward runs inside the pass that sums db).
void linear_backward_bf16(Bf16Operand xb, Bf16Operand Wb, float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                          float* dW, float* db, bool accumulate_dx = false, bool accumulate_grads = true,
                          const float* preact = nullptr, Act act = Act::None);

}  // namespace clipkit::backend::cpu
