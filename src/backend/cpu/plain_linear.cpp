#include "backend/cpu/plain_linear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "backend/cpu/activation.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/matmul_bf16.h"
#include "backend/cpu/vec_avx2.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {
namespace {

// db [N] += column sums of dy [M, N], optionally with dy rounded to bf16 written in the same pass:
// its bits into dyb and/or the rounded values in fp32 into dyw. With preact, dy is first taken
// through the activation's backward, a row at a time in the same pass (dy itself is left as it
// was): what act_backward and then this pass give, without writing and re-reading the gradient.
// Rows are summed in fixed blocks of kSumRows (each block's rows in order, into its own partial
// row), then the partials are added to db in block order: one streaming pass over dy split by rows,
// and the same bits for any thread count and for both precisions.
constexpr int64_t kSumRows = 64;

void column_sums(const float* dy, int64_t M, int64_t N, float* db, uint16_t* dyb = nullptr, float* dyw = nullptr,
                 const float* preact = nullptr, Act act = Act::None) {
  const int64_t nb = (M + kSumRows - 1) / kSumRows, vend = N / 8 * 8;
  float* part = Workspace::local().get(kColumnPartials, static_cast<size_t>(std::max<int64_t>(1, nb * N)));
  parallel_for(nb, [&](int64_t bb, int64_t be) {
    std::vector<float> row(preact ? static_cast<size_t>(N) : 0);
    for (int64_t blk = bb; blk < be; ++blk) {
      float* p = part + blk * N;
      std::memset(p, 0, sizeof(float) * static_cast<size_t>(N));
      for (int64_t r = blk * kSumRows; r < std::min(M, (blk + 1) * kSumRows); ++r) {
        const float* d = dy + r * N;
        if (preact) {
          act_backward_serial(preact + r * N, d, row.data(), N, act);
          d = row.data();
        }
        uint16_t* o = dyb ? dyb + r * N : nullptr;
        float* ow = dyw ? dyw + r * N : nullptr;
        int64_t c = 0;
        for (; c < vend; c += 8) {
          const __m256 v = _mm256_loadu_ps(d + c);
          if (o) avx2::store_bf16x8(o + c, v);
          if (ow) _mm256_storeu_ps(ow + c, avx2::round_bf16x8(v));
          _mm256_storeu_ps(p + c, _mm256_add_ps(_mm256_loadu_ps(p + c), v));
        }
        for (; c < N; ++c) {
          if (o) o[c] = f32_to_bf16_simd(d[c]);
          if (ow) ow[c] = bf16_to_f32(f32_to_bf16_simd(d[c]));
          p[c] += d[c];
        }
      }
    }
  });
  parallel_for(N, [&](int64_t cb, int64_t ce) {
    for (int64_t blk = 0; blk < nb; ++blk) {
      const float* p = part + blk * N;
      for (int64_t c = cb; c < ce; ++c) db[c] += p[c];
    }
  }, 64);
}

void zero(float* p, int64_t n) {
  if (p && n > 0) std::memset(p, 0, sizeof(float) * static_cast<size_t>(n));
}

}  // namespace

void linear_forward(const float* x, const float* W, const float* b, int64_t M, int64_t N, int64_t K, float* y,
                    Precision p) {
  ProfileScope prof("linear fwd");
  if (b) {
    parallel_for(M, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) std::memcpy(y + r * N, b, sizeof(float) * N);
    }, 64);
  }
  gemm(p, false, true, M, N, K, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

void linear_backward(const float* x, const float* W, const float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                     float* dW, float* db, Precision p, bool accumulate_dx, bool accumulate_grads) {
  ProfileScope prof("linear bwd");
  if (dx) gemm(p, false, false, M, K, N, dy, N, W, K, accumulate_dx ? 1.0f : 0.0f, dx, K);
  if (dW) gemm(p, true, false, N, K, M, dy, N, x, K, accumulate_grads ? 1.0f : 0.0f, dW, K);
  if (db) {
    if (!accumulate_grads) zero(db, N);
    column_sums(dy, M, N, db);
  }
}

// y [M, N] = xb [M, K] @ Wb^T + b
void linear_forward_bf16(Bf16Operand xb, Bf16Operand Wb, const float* b, int64_t M, int64_t N, int64_t K,
                         float* y) {
  ProfileScope prof("linear fwd bf16");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t r = 0; r < M; ++r) {
      if (b) std::memcpy(y + r * N, b, sizeof(float) * N);
      else std::memset(y + r * N, 0, sizeof(float) * N);
    }
    return;
  }
  matmul_bf16(false, true, M, N, K, xb, K, Wb, K, 0.0f, y, N, b);
}

// yb [M, N] = bf16(xb [M, K] @ Wb^T + b)
void linear_forward_bf16_out(Bf16Operand xb, Bf16Operand Wb, const float* b, int64_t M, int64_t N, int64_t K,
                             uint16_t* yb) {
  ProfileScope prof("linear fwd bf16");
  if (M == 0 || N == 0) return;
  CLIPKIT_ASSERT(K > 0);
  matmul_bf16_to_bf16(false, true, M, N, K, xb, K, Wb, K, yb, N, b);
}

// dx [M, K] = dy [M, N] @ Wb [N, K]      dW [N, K] += dy^T [N, M] @ xb [M, K]      db [N] += sum_rows dy
void linear_backward_bf16(Bf16Operand xb, Bf16Operand Wb, float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                          float* dW, float* db, bool accumulate_dx, bool accumulate_grads, const float* preact,
                          Act act) {
  ProfileScope prof("linear bwd bf16");
  // The activation's backward runs inside the pass below where that pass sums db and the rows are
  // whole 8-lane groups (so per row gives act_backward's values); else first, over all of dy.
  const bool fuse_act = act != Act::None && db && M > 0 && N > 0 && K > 0 && N % 8 == 0;
  if (act != Act::None && !fuse_act) act_backward(preact, dy, dy, M * N, act);
  if (!accumulate_grads) zero(db, N);
  if (M == 0 || N == 0 || K == 0) {
    if (!accumulate_grads) zero(dW, N * K);
    if (dx && !accumulate_dx)
      for (int64_t r = 0; r < M; ++r) std::memset(dx + r * K, 0, sizeof(float) * K);
    if (db) column_sums(dy, M, N, db);
    return;
  }
  // dy is converted once for both products (with db summed in the same pass): to bf16 bits for
  // bf16 kernels, else straight to the rounded fp32 values the widened products read. dW: a first
  // write goes through oneDNN's inner-product weight gradient; accumulating reads dy transposed.
  const bool native = bf16_matmul_native();
  uint16_t* dyb = native ? Workspace::local().get_bf16(kDyBf16, M * N) : nullptr;
  float* dyw = native ? nullptr : Workspace::local().get(kDyWide, static_cast<size_t>(M * N));
  {
    ProfileScope prof_dy("linear bwd dy+db");
    if (db) column_sums(dy, M, N, db, dyb, dyw, fuse_act ? preact : nullptr, act);
    else round_to_bf16(dy, dyb, dyw, M * N);
  }
  const Bf16Operand g(dyb, dyw);
  if (dx) matmul_bf16(false, false, M, K, N, g, N, Wb, K, accumulate_dx ? 1.0f : 0.0f, dx, K);
  if (dW) {
    if (accumulate_grads) matmul_bf16(true, false, N, K, M, g, N, xb, K, 1.0f, dW, K);
    else weight_grad_bf16(M, N, K, g, xb, dW);
  }
}

}  // namespace clipkit::backend::cpu
