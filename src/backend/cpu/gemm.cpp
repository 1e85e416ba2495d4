#include "backend/cpu/gemm.h"

#include <cstring>
#include <dnnl.hpp>

#include "backend/cpu/matmul_bf16.h"
#include "backend/cpu/workspace.h"
#include "backend/flop_count.h"
#include "core/error.h"

namespace clipkit::backend::cpu {
namespace {

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  // A's storage is (ta ? K x lda : M x lda); B's is (tb ? N x ldb : K x ldb).
  const int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;
  const Bf16Operand a = round_operand(A, na, kGemmA), b = round_operand(B, nb, kGemmB);
  matmul_bf16(ta, tb, M, N, K, a, lda, b, ldb, beta, C, ldc);
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  count_flops(2 * M * N * K);
  auto st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (st != dnnl_success) fail("internal error: dnnl_sgemm failed with status {}", static_cast<int>(st));
}

void gemm(Precision p, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  CLIPKIT_ASSERT(beta == 0.0f || beta == 1.0f);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, sizeof(float) * N);
    return;
  }
  if (p == Precision::BF16) gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void to_bf16(const float* x, uint16_t* y, int64_t n) { round_to_bf16(x, y, nullptr, n); }

}  // namespace clipkit::backend::cpu
