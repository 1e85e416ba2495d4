// Row gathers and scatters on the device: embeddings, pooling and the index tensors of the model
// stack (ops/embedding.h, ops/pooling.h, train/trainable_blocks.h's LayerRows).
//   embedding:  y[r] (+)= table[ids[r]]          table [V, C], ids [n] (int32), y [n, C]
//               dtable[ids[r]] += dy[r]          rows with ids[r] == skip_id (>= 0) get no gradient
//   pooling:    y[b] = x[b, pos[b]]              x [B, L, C], pos [B] (int64, null = 0), y [B, C]
//   rows:       dst[r] = src[idx[r]]  /  dst[idx[r]] = src[r]   (int64 indices, fp32 or bf16 rows)
// Ids outside [0, V) (V is the table's row count, an argument the CPU ops do not take) read as a
// zero row and get no gradient, so a bad id cannot touch memory outside the table.
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"

namespace clipkit::cuda {

void embedding_forward(const float* table, int64_t V, const int32_t* ids, int64_t n, int64_t C, float* y,
                       bool accumulate, Context& ctx);
// Deterministic and bit-identical to the CPU: ids are stably sorted (CUB radix sort) and each
// table row adds its rows' gradients in row order, starting from its current value, as
// ops::embedding_backward does.
void embedding_backward(const float* dy, const int32_t* ids, int64_t n, int64_t C, float* dtable, int64_t V,
                        int32_t skip_id, Context& ctx);

void pool_rows_forward(const float* x, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* y, Context& ctx);
// dx[b, pos[b]] += dy[b]; other rows untouched (one pooled row per sequence: no two b share a row)
void pool_rows_backward(const float* dy, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* dx, Context& ctx);

// dst [n, W] = src rows idx[0..n) (LayerRows::gather_in)
void gather_rows(const float* src, const int64_t* idx, int64_t n, int64_t W, float* dst, Context& ctx);
void gather_rows(const uint16_t* src, const int64_t* idx, int64_t n, int64_t W, uint16_t* dst, Context& ctx);
// dst [M, W]: row idx[r] = src row r (idx distinct); with zero_others the other rows are 0
// (LayerRows::scatter_in); with accumulate, dst[idx[r]] += src[r] instead (fp32 only).
void scatter_rows(const float* src, const int64_t* idx, int64_t n, int64_t M, int64_t W, float* dst, bool zero_others,
                  bool accumulate, Context& ctx);
void scatter_rows(const uint16_t* src, const int64_t* idx, int64_t n, int64_t M, int64_t W, uint16_t* dst,
                  bool zero_others, Context& ctx);

}  // namespace clipkit::cuda
