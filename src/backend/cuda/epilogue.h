// The elementwise epilogues GEMMs need when cuBLASLt cannot fuse them (quick_gelu, gelu (erf), a
// saved pre-activation) and the bias gradient's column sums.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"
#include "core/tensor.h"

namespace clipkit::cuda {

// y [M, N] (row stride ldy, F32 or BF16) = act(x + bias) (+ y when accumulate), x [M, N] fp32 with
// row stride ldx, bias [N] or null; preact (optional, fp32 [M, N] contiguous) = x + bias. x may be
// y (F32, ldx = ldy) or preact (ldx = N).
void bias_act(const float* x, int64_t ldx, const float* bias, int64_t M, int64_t N, bool activate, backend::Act act,
              float* preact, void* y, int64_t ldy, DType y_type, bool accumulate, Context& ctx);

// out [cols] = (or += when accumulate) the column sums of x [rows, cols] (row stride ldx, F32 or BF16),
// summed in fp32 in an order fixed by the shape alone (deterministic). copy_bf16 (optional, x F32
// only): [rows, cols] contiguous = bf16(x), written in the same pass.
void column_sums(const void* x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, float* out, bool accumulate,
                 Context& ctx, uint16_t* copy_bf16 = nullptr);

}  // namespace clipkit::cuda
