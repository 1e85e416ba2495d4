#include "backend/cuda/epilogue.h"

#include "backend/cuda/column_reduce.cuh"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

template <typename Out>
__global__ void bias_act_kernel(const float* x, int64_t ldx, const float* bias, int64_t M, int64_t N, bool activate,
                                backend::Act act, float* preact, Out* y, int64_t ldy, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < M * N; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / N, c = i % N;
    float v = x[r * ldx + c];
    if (bias) v += bias[c];
    if (preact) preact[r * N + c] = v;
    if (activate) v = dev::act_forward(v, act);
    Out* yp = y + r * ldy + c;
    if (accumulate) v += dev::load(yp);
    dev::store(yp, v);
  }
}

// partial[chunk, c] = sum of x[r, c] over the chunk's rows; with one chunk, out (+)= directly
template <typename In>
__global__ void column_partials_kernel(const In* x, int64_t rows, int64_t cols, int64_t ldx, float* partial,
                                       uint16_t* copy_bf16, float* out, bool accumulate) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = blockIdx.y * dev::kChunkRows, r1 = min(rows, r0 + dev::kChunkRows);
  float s = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const float v = dev::load(x + r * ldx + c);
    if (copy_bf16) dev::store(copy_bf16 + r * cols + c, v);
    s += v;
  }
  if (gridDim.y == 1) out[c] = accumulate ? out[c] + s : s;
  else partial[blockIdx.y * cols + c] = s;
}

template <typename In>
void column_sums_t(const In* x, int64_t rows, int64_t cols, int64_t ldx, float* out, bool accumulate, Context& ctx,
                   uint16_t* copy_bf16) {
  const int64_t chunks = dev::row_chunks(rows);
  ArenaScope scope(ctx.scratch());
  float* partial = chunks > 1 ? ctx.scratch().alloc<float>(chunks * cols) : nullptr;
  const dim3 grid(static_cast<unsigned>((cols + dev::kColThreads - 1) / dev::kColThreads), static_cast<unsigned>(chunks));
  column_partials_kernel<<<grid, dev::kColThreads, 0, ctx.stream()>>>(x, rows, cols, ldx, partial, copy_bf16, out,
                                                                       accumulate);
  CLIPKIT_LAUNCH_CHECK(column_partials_kernel);
  if (chunks > 1) dev::finish_columns(partial, chunks, cols, out, accumulate, ctx.stream());
}

}  // namespace

void bias_act(const float* x, int64_t ldx, const float* bias, int64_t M, int64_t N, bool activate, backend::Act act,
              float* preact, void* y, int64_t ldy, DType y_type, bool accumulate, Context& ctx) {
  if (M <= 0 || N <= 0) return;
  const unsigned grid = dev::grid_for(M * N, 256);
  if (y_type == DType::F32)
    bias_act_kernel<<<grid, 256, 0, ctx.stream()>>>(x, ldx, bias, M, N, activate, act, preact, static_cast<float*>(y),
                                                    ldy, accumulate);
  else if (y_type == DType::BF16)
    bias_act_kernel<<<grid, 256, 0, ctx.stream()>>>(x, ldx, bias, M, N, activate, act, preact,
                                                    static_cast<uint16_t*>(y), ldy, accumulate);
  else
    fail_msg("cuda bias_act: the output must be F32 or BF16");
  CLIPKIT_LAUNCH_CHECK(bias_act_kernel);
}

void column_sums(const void* x, DType x_type, int64_t rows, int64_t cols, int64_t ldx, float* out, bool accumulate,
                 Context& ctx, uint16_t* copy_bf16) {
  if (cols <= 0) return;
  if (rows <= 0) {
    if (!accumulate) fill_zero(out, sizeof(float) * cols, ctx.stream());
    return;
  }
  if (x_type == DType::F32) return column_sums_t(static_cast<const float*>(x), rows, cols, ldx, out, accumulate, ctx, copy_bf16);
  if (x_type != DType::BF16 || copy_bf16) fail_msg("cuda column_sums: x must be F32 (or BF16 without a bf16 copy)");
  column_sums_t(static_cast<const uint16_t*>(x), rows, cols, ldx, out, accumulate, ctx, nullptr);
}

}  // namespace clipkit::cuda
