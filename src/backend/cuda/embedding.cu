#include "backend/cuda/embedding.h"

#include <cub/device/device_radix_sort.cuh>
#include <string>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

__global__ void embedding_fwd_kernel(const float* table, int64_t V, const int32_t* ids, int64_t n, int64_t C, float* y,
                                     bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / C, c = i % C;
    const int32_t id = ids[r];
    if (id < 0) continue;  // left as it is
    const float v = id < V ? table[static_cast<int64_t>(id) * C + c] : 0.0f;
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
__global__ void gather_rows_kernel(const T* src, const int32_t* idx, int64_t n, int64_t W, T* dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * W; i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = src[static_cast<int64_t>(idx[i / W]) * W + i % W];
}

template <typename T>
__global__ void scatter_rows_kernel(const T* src, const int32_t* idx, int64_t n, int64_t W, T* dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * W; i += int64_t{gridDim.x} * blockDim.x)
    dst[static_cast<int64_t>(idx[i / W]) * W + i % W] = src[i];
}

template <typename T>
void gather(const void* src, const int32_t* idx, int64_t n, int64_t W, void* dst, Context& ctx) {
  gather_rows_kernel<<<dev::grid_for(n * W, 256), 256, 0, ctx.stream()>>>(static_cast<const T*>(src), idx, n, W,
                                                                           static_cast<T*>(dst));
  CLIPKIT_LAUNCH_CHECK(gather_rows_kernel);
}

template <typename T>
void scatter(const void* src, const int32_t* idx, int64_t n, int64_t W, void* dst, Context& ctx) {
  scatter_rows_kernel<<<dev::grid_for(n * W, 256), 256, 0, ctx.stream()>>>(static_cast<const T*>(src), idx, n, W,
                                                                            static_cast<T*>(dst));
  CLIPKIT_LAUNCH_CHECK(scatter_rows_kernel);
}

void check_elem(size_t elem, const char* what) {
  if (elem != 2 && elem != 4) fail_msg(std::string("cuda ") + what + ": elements of 2 or 4 bytes only");
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

void gather_rows(const void* src, const int32_t* idx, int64_t n, int64_t W, size_t elem, void* dst, Context& ctx) {
  check_elem(elem, "gather_rows");
  if (n <= 0 || W <= 0) return;
  if (elem == 4) gather<uint32_t>(src, idx, n, W, dst, ctx);
  else gather<uint16_t>(src, idx, n, W, dst, ctx);
}

void scatter_rows(const void* src, const int32_t* idx, int64_t n, int64_t M, int64_t W, size_t elem, void* dst,
                  bool zero_others, Context& ctx) {
  check_elem(elem, "scatter_rows");
  if (W <= 0) return;
  if (zero_others) fill_zero(dst, elem * M * W, ctx.stream());
  if (n <= 0) return;
  if (elem == 4) scatter<uint32_t>(src, idx, n, W, dst, ctx);
  else scatter<uint16_t>(src, idx, n, W, dst, ctx);
}

}  // namespace clipkit::cuda
