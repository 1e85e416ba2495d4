// Dropout over the counter-hash masks of backend/dropout_hash.h, 8 lanes at a time.
#pragma once
#include <cstdint>

#include "backend/dropout_hash.h"

namespace clipkit::backend::cpu {

// s[j] = 0 where element i0 + j is dropped, keep_scale where it is kept (j < n).
void dropout_scales(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, float* s);
// y[j] = 0 where element i0 + j is dropped, x[j] * keep_scale where it is kept (y may be x).
void dropout_mask_apply(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, const float* x, float* y);

// One mask stream with its inverted-dropout scale: p in [0, 1] (else clipkit::fail), kept
// elements are multiplied by keep_scale = 1 / (1 - p).
struct DropoutMask {
  float p = 0, keep_scale = 1;
  uint64_t stream = 0;
  DropoutMask(float p, uint64_t seed, uint64_t site);
  // s[j] for elements i0 .. i0 + n - 1 (see dropout_scales)
  void scales(uint64_t i0, int64_t n, float* s) const { dropout_scales(stream, i0, n, p, keep_scale, s); }
  // y = dropout(x) for elements i0 .. i0 + n - 1 (see dropout_mask_apply)
  void apply(uint64_t i0, int64_t n, const float* x, float* y) const {
    dropout_mask_apply(stream, i0, n, p, keep_scale, x, y);
  }
};

}  // namespace clipkit::backend::cpu
