// Dropout on the device with the CPU's counter-hash masks (backend/dropout_hash.h, the same constexpr
// functions called from the kernels): bit-identical keep decisions, and no mask is stored (the
// backward pass applies the same call to dy).
//   y [R, C] = dropped ? 0 : x / (1 - p), element (i, c) at mask index (row_ids ? row_ids[i] : i) * C + c
// row_ids (optional, device [R]): the rows' positions in the full padded tensor when only some
// rows are computed (backend::Dropout::rows). y may be x. p in [0, 1].
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"
#include "backend/dropout_hash.h"

#if defined(__CUDACC__)
#define CLIPKIT_HOST_DEVICE __host__ __device__
#else
#define CLIPKIT_HOST_DEVICE
#endif

namespace clipkit::cuda {

void dropout_apply(const float* x, float* y, int64_t R, int64_t C, const int32_t* row_ids, float p, uint64_t seed,
                   uint64_t site, Context& ctx);

// p checked as backend::cpu::DropoutMask does (clipkit::Error outside [0, 1]); returns 1 / (1 - p) (0 for p = 1).
float dropout_keep_scale(float p);

// The factor of element i: 0 when dropped, keep_scale when kept. The kernels' code, compiled for
// the host too, so that the tests check it against backend::cpu::dropout_scales without a GPU.
CLIPKIT_HOST_DEVICE inline float dropout_factor(uint64_t stream, uint64_t i, float p, float keep_scale) {
  return backend::dropout_dropped(stream, i, p) ? 0.0f : keep_scale;
}

}  // namespace clipkit::cuda
