#include "backend/cuda/embedding.h"

#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

__global__ void embedding_fwd_kernel(const float* table, int64_t V, const int32_t* ids, int64_t n, int64_t C, float* y,
                                     bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / C, c = i % C;
    const int32_t id = ids[r];
    const float v = id >= 0 && id < V ? table[static_cast<int64_t>(id) * C + c] : 0.0f;
    y[i] = accumulate ? y[i] + v : v;
  }
}

// One thread per (start of a run of equal sorted ids, column): the run's rows in row order.
__global__ void embedding_bwd_kernel(const float* dy, const int32_t* sorted_ids, const int32_t* rows, int64_t n,
                                     int64_t C, float* dtable, int64_t V, int32_t skip_id) {
  const int64_t p = blockIdx.x;
  const int64_t c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x;
  if (c >= C) return;
  const int32_t id = sorted_ids[p];
  if ((p > 0 && sorted_ids[p - 1] == id) || id == skip_id || id < 0 || id >= V) return;
  float* dst = dtable + static_cast<int64_t>(id) * C + c;
  float acc = *dst;
  for (int64_t q = p; q < n && sorted_ids[q] == id; ++q) acc += dy[static_cast<int64_t>(rows[q]) * C + c];
  *dst = acc;
}

__global__ void iota_kernel(int32_t* v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    v[i] = static_cast<int32_t>(i);
}

template <typename T>
__global__ void gather_rows_kernel(const T* src, const int64_t* idx, int64_t n, int64_t W, T* dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * W; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = src[idx[i / W] * W + i % W];
}

template <typename T>
__global__ void scatter_rows_kernel(const T* src, const int64_t* idx, int64_t n, int64_t W, T* dst, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * W; i += int64_t{gridDim.x} * blockDim.x) {
    T* d = dst + idx[i / W] * W + i % W;
    if constexpr (sizeof(T) == 4) {
      *d = accumulate ? *d + src[i] : src[i];
    } else {
      *d = src[i];
    }
  }
}

// dst[b] = x[b, pos[b]] (pooling: idx = b*L + pos[b]) or dx[b, pos[b]] += dy[b]
__global__ void pool_kernel(const float* x, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* y,
                            bool backward) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < B * C; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = i / C, c = i % C;
    const int64_t row = b * L + (pos ? pos[b] : 0);
    if (backward) y[row * C + c] += x[i];
    else y[i] = x[row * C + c];
  }
}

template <typename T>
void gather(const T* src, const int64_t* idx, int64_t n, int64_t W, T* dst, Context& ctx) {
  if (n <= 0 || W <= 0) return;
  gather_rows_kernel<<<dev::grid_for(n * W, 256), 256, 0, ctx.stream()>>>(src, idx, n, W, dst);
  CLIPKIT_LAUNCH_CHECK(gather_rows_kernel);
}

template <typename T>
void scatter(const T* src, const int64_t* idx, int64_t n, int64_t M, int64_t W, T* dst, bool zero_others,
             bool accumulate, Context& ctx) {
  if (W <= 0) return;
  if (zero_others) fill_zero(dst, sizeof(T) * M * W, ctx.stream());
  if (n <= 0) return;
  scatter_rows_kernel<<<dev::grid_for(n * W, 256), 256, 0, ctx.stream()>>>(src, idx, n, W, dst, accumulate);
  CLIPKIT_LAUNCH_CHECK(scatter_rows_kernel);
}

}  // namespace

void embedding_forward(const float* table, int64_t V, const int32_t* ids, int64_t n, int64_t C, float* y,
                       bool accumulate, Context& ctx) {
  if (n <= 0 || C <= 0) return;
  embedding_fwd_kernel<<<dev::grid_for(n * C, 256), 256, 0, ctx.stream()>>>(table, V, ids, n, C, y, accumulate);
  CLIPKIT_LAUNCH_CHECK(embedding_fwd_kernel);
}

void embedding_backward(const float* dy, const int32_t* ids, int64_t n, int64_t C, float* dtable, int64_t V,
                        int32_t skip_id, Context& ctx) {
  if (n <= 0 || C <= 0) return;
  if (n > INT32_MAX) fail_msg("cuda embedding_backward: more than 2^31 rows");
  DeviceArena& ws = ctx.scratch();
  ArenaScope scope(ws);
  int32_t* rows_in = ws.alloc<int32_t>(n);
  int32_t* rows = ws.alloc<int32_t>(n);
  int32_t* sorted = ws.alloc<int32_t>(n);
  iota_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(rows_in, n);
  CLIPKIT_LAUNCH_CHECK(iota_kernel);
  // a stable LSD radix sort over the id bits: equal ids keep their row order
  size_t temp_bytes = 0;
  const int n32 = static_cast<int>(n);
  CLIPKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ids, sorted, rows_in, rows, n32, 0, 32,
                                                     ctx.stream()));
  void* temp = ws.alloc_bytes(temp_bytes);
  CLIPKIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, ids, sorted, rows_in, rows, n32, 0, 32,
                                                     ctx.stream()));
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((C + 127) / 128));
  embedding_bwd_kernel<<<grid, 128, 0, ctx.stream()>>>(dy, sorted, rows, n, C, dtable, V, skip_id);
  CLIPKIT_LAUNCH_CHECK(embedding_bwd_kernel);
}

void pool_rows_forward(const float* x, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* y, Context& ctx) {
  if (B <= 0 || C <= 0) return;
  pool_kernel<<<dev::grid_for(B * C, 256), 256, 0, ctx.stream()>>>(x, pos, B, L, C, y, false);
  CLIPKIT_LAUNCH_CHECK(pool_kernel);
}

void pool_rows_backward(const float* dy, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* dx, Context& ctx) {
  if (B <= 0 || C <= 0) return;
  pool_kernel<<<dev::grid_for(B * C, 256), 256, 0, ctx.stream()>>>(dy, pos, B, L, C, dx, true);
  CLIPKIT_LAUNCH_CHECK(pool_kernel);
}

void gather_rows(const float* src, const int64_t* idx, int64_t n, int64_t W, float* dst, Context& ctx) {
  gather(src, idx, n, W, dst, ctx);
}
void gather_rows(const uint16_t* src, const int64_t* idx, int64_t n, int64_t W, uint16_t* dst, Context& ctx) {
  gather(src, idx, n, W, dst, ctx);
}
void scatter_rows(const float* src, const int64_t* idx, int64_t n, int64_t M, int64_t W, float* dst, bool zero_others,
                  bool accumulate, Context& ctx) {
  scatter(src, idx, n, M, W, dst, zero_others, accumulate, ctx);
}
void scatter_rows(const uint16_t* src, const int64_t* idx, int64_t n, int64_t M, int64_t W, uint16_t* dst,
                  bool zero_others, Context& ctx) {
  scatter(src, idx, n, M, W, dst, zero_others, false, ctx);
}

}  // namespace clipkit::cuda
