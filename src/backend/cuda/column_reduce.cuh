// Deterministic column sums in two passes (no atomics: the order depends on the shape alone):
//   1. blocks of kChunkRows rows write one partial sum per column: partial [chunks, cols]
//   2. finish_columns: out[c] (+)= sum over chunks of partial[chunk, c], in chunk order
#pragma once
#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda::dev {

constexpr int64_t kChunkRows = 128;
constexpr int kColThreads = 256;

inline int64_t row_chunks(int64_t rows) { return (rows + kChunkRows - 1) / kChunkRows; }

__global__ inline void finish_columns_kernel(const float* partial, int64_t chunks, int64_t cols, float* out,
                                             bool accumulate) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= cols) return;
  float s = 0;
  for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
  out[c] = accumulate ? out[c] + s : s;
}

inline void finish_columns(const float* partial, int64_t chunks, int64_t cols, float* out, bool accumulate,
                           cudaStream_t s) {
  finish_columns_kernel<<<static_cast<unsigned>((cols + kColThreads - 1) / kColThreads), kColThreads, 0, s>>>(
      partial, chunks, cols, out, accumulate);
  CLIPKIT_LAUNCH_CHECK(finish_columns_kernel);
}

}  // namespace clipkit::cuda::dev
