#include "backend/cpu/embedding.h"

#include "core/parallel.h"

namespace clipkit::backend::cpu {

void embedding_forward(const float* table, const int32_t* ids, int64_t n, int64_t C, float* y, bool accumulate) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      if (ids[r] < 0) continue;
      const float* src = table + static_cast<int64_t>(ids[r]) * C;
      float* dst = y + r * C;
      if (accumulate)
        for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
      else
        for (int64_t c = 0; c < C; ++c) dst[c] = src[c];
    }
  }, 16);
}

void embedding_backward(const float* dy, const int32_t* ids, int64_t n, int64_t C, float* dtable, int32_t skip_id) {
  // Each thread owns a column range: rows sharing an id are summed in row order, deterministically.
  parallel_for(C, [&](int64_t cb, int64_t ce) {
    for (int64_t r = 0; r < n; ++r) {
      if (ids[r] < 0 || ids[r] == skip_id) continue;
      float* dst = dtable + static_cast<int64_t>(ids[r]) * C;
      const float* src = dy + r * C;
      for (int64_t c = cb; c < ce; ++c) dst[c] += src[c];
    }
  }, 16);
}

}  // namespace clipkit::backend::cpu
