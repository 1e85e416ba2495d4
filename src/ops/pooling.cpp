#include "ops/pooling.h"

#include <cstring>

namespace clipkit::ops {

void pool_rows_forward(const float* x, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* y) {
  for (int64_t b = 0; b < B; ++b) std::memcpy(y + b * C, x + (b * L + (pos ? pos[b] : 0)) * C, sizeof(float) * C);
}

void pool_rows_backward(const float* dy, const int64_t* pos, int64_t B, int64_t L, int64_t C, float* dx) {
  for (int64_t b = 0; b < B; ++b) {
    float* d = dx + (b * L + (pos ? pos[b] : 0)) * C;
    for (int64_t c = 0; c < C; ++c) d[c] += dy[b * C + c];
  }
}

}  // namespace clipkit::ops
