// Row gathers and scatters on the device by int32 index (backend::Backend's embedding,
// embedding_backward, gather_rows, scatter_rows, scatter_add_rows; backend/cpu/embedding.h):
//   embedding:  y[r] (+)= table[ids[r]]          table [V, C], ids [n], y [n, C]; rows with a
//                                                negative id are left as they are
//               dtable[ids[r]] += dy[r]          rows with a negative id or ids[r] == skip_id get no
//                                                gradient (scatter_add_rows is this with skip_id -1)
//   rows:       dst[r] = src[idx[r]]  /  dst[idx[r]] = src[r]
// Ids >= V (V is the table's row count, an argument the CPU ops do not take) read as a zero row and
// get no gradient, so a bad id cannot touch memory outside the table.
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"

namespace clipkit::cuda {

void embedding_forward(const float* table, int64_t V, const int32_t* ids, int64_t n, int64_t C, float* y,
                       bool accumulate, Context& ctx);
// Deterministic and bit-identical to the CPU: ids are stably sorted (CUB radix sort) and each
// table row adds its rows' gradients in row order, starting from its current value, as
// backend::cpu::embedding_backward does.
void embedding_backward(const float* dy, const int32_t* ids, int64_t n, int64_t C, float* dtable, int64_t V,
                        int32_t skip_id, Context& ctx);

// dst [n, W] = src rows idx[0..n), rows of W elements of `elem` bytes (2 or 4: any dtype)
void gather_rows(const void* src, const int32_t* idx, int64_t n, int64_t W, size_t elem, void* dst, Context& ctx);
// dst [M, W]: row idx[r] = src row r (idx distinct); with zero_others the other rows are 0.
void scatter_rows(const void* src, const int32_t* idx, int64_t n, int64_t M, int64_t W, size_t elem, void* dst,
                  bool zero_others, Context& ctx);

}  // namespace clipkit::cuda
