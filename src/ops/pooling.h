// Token pooling: one row per sequence picked out of the hidden states (CLIP's EOS token, the
// vision CLS token and RoBERTa's first token), and its gradient.
//   y[b] = x[b, pos[b]]          x [B, L, C], pos [B] (null = position 0), y [B, C]
#pragma once
#include <cstdint>

namespace clipkit::ops {

void pool_rows_forward(const float* x, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* y);
// dx[b, pos[b]] += dy[b]; other rows untouched.
void pool_rows_backward(const float* dy, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* dx);

}  // namespace clipkit::ops
