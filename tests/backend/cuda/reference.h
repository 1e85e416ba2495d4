// Float64 references of the CUDA kernel tests where the CPU op needs oneDNN (not in the
// standalone GPU build): GEMM and the attention backward (its forward and probabilities are
// tests/backend/attention_ref.h's).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/attention_ref.h"
#include "backend/dropout_hash.h"

namespace clipkit::test {

// C [M, N] (ld ldc) = op(A) op(B), row-major with A (trans_a ? K x lda : M x lda), B (trans_b ? N x ldb : K x ldb)
template <typename TA, typename TB>
std::vector<double> gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<TA>& A, int64_t lda,
                             const std::vector<TB>& B, int64_t ldb, int64_t ldc) {
  std::vector<double> C(static_cast<size_t>(M * ldc), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += static_cast<double>(ta ? A[k * lda + i] : A[i * lda + k]) * static_cast<double>(tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = s;
    }
  return C;
}

// dqkv [B, L, 3C] of sum(dout * attn_ref(qkv)), analytically:
//   dV = P_d^T dO,  dP = (dO V^T) keep,  dS = P (dP - rowsum(P dP)) / sqrt(D),  dQ = dS K,  dK = dS^T Q
inline std::vector<double> attn_backward_ref(const std::vector<double>& qkv, const std::vector<double>& dout,
                                             const backend::AttentionShape& s, bool causal, const std::vector<int32_t>& mask,
                                             const backend::Dropout& drop = {}) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  const std::vector<double> P = attn_probs_ref(qkv, s, causal, mask);
  const uint64_t stream = backend::dropout_stream(drop.seed, drop.site);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> dqkv(static_cast<size_t>(B * L * 3 * C), 0.0);
  auto q = [&](int64_t b, int64_t i, int64_t h, int64_t k) { return qkv[(b * L + i) * 3 * C + h * D + k]; };
  auto kk = [&](int64_t b, int64_t j, int64_t h, int64_t k) { return qkv[(b * L + j) * 3 * C + C + h * D + k]; };
  auto v = [&](int64_t b, int64_t j, int64_t h, int64_t k) { return qkv[(b * L + j) * 3 * C + 2 * C + h * D + k]; };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        const double* p = &P[((b * H + h) * L + i) * L];
        const double* go = &dout[(b * L + i) * C + h * D];
        std::vector<double> dp(static_cast<size_t>(L));
        double dot = 0;
        for (int64_t j = 0; j < L; ++j) {
          const double keep = attn_keep_ref(drop, stream, static_cast<uint64_t>(((b * H + h) * L + i) * L + j));
          double g = 0;
          for (int64_t k = 0; k < D; ++k) {
            g += go[k] * v(b, j, h, k);
            dqkv[(b * L + j) * 3 * C + 2 * C + h * D + k] += p[j] * keep * go[k];
          }
          dp[j] = g * keep;
          dot += p[j] * dp[j];
        }
        for (int64_t j = 0; j < L; ++j) {
          const double ds = p[j] * (dp[j] - dot) * scale;
          for (int64_t k = 0; k < D; ++k) {
            dqkv[(b * L + i) * 3 * C + h * D + k] += ds * kk(b, j, h, k);
            dqkv[(b * L + j) * 3 * C + C + h * D + k] += ds * q(b, i, h, k);
          }
        }
      }
  return dqkv;
}

}  // namespace clipkit::test
