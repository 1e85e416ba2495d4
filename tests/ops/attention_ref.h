// The float64 reference of training attention the op tests check against (forward value; their
// finite differences of it give the reference gradients).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/attention.h"
#include "ops/dropout_mask.h"

namespace clipkit::test {

// The softmax weights P [B, H, L, L] in double: softmax(q k^T / sqrt(D) + mask) (a fully masked
// row gives zeros).
inline std::vector<double> attn_probs_ref(const std::vector<double>& qkv, const ops::AttentionShape& s, bool causal,
                                          const std::vector<int32_t>& mask) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  std::vector<double> P(static_cast<size_t>(B * H * L * L), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        double* p = &P[static_cast<size_t>(((b * H + h) * L + i) * L)];
        double mx = -1e300;
        auto masked = [&](int64_t j) { return (causal && j > i) || (!mask.empty() && mask[b * L + j] == 0); };
        for (int64_t j = 0; j < L; ++j) {
          if (masked(j)) continue;
          double d = 0;
          for (int64_t k = 0; k < D; ++k) d += qkv[(b * L + i) * 3 * C + h * D + k] * qkv[(b * L + j) * 3 * C + C + h * D + k];
          p[j] = d * scale;
          mx = std::max(mx, p[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < L; ++j) {
          p[j] = masked(j) ? 0.0 : std::exp(p[j] - mx);
          z += p[j];
        }
        for (int64_t j = 0; j < L; ++j) p[j] = z > 0 ? p[j] / z : 0.0;
      }
  return P;
}

// keep / (1 - p) of probability element idx ((b*H + h)*L + i)*L + j: 0 when dropped, exactly 1 without dropout
inline double attn_keep_ref(const ops::AttentionDropout& drop, const ops::DropoutMask& dm, uint64_t idx) {
  return drop.on() && ops::dropout_dropped(dm.stream, idx, drop.p) ? 0.0 : double(dm.keep_scale);
}

// The definition in double: out_h = (softmax(q k^T / sqrt(D) + mask) * keep / (1 - p)) v, with
// the keep mask of probability [b, h, i, j] at element ((b*H + h)*L + i)*L + j of the stream;
// without dropout (p = 0) every keep factor is exactly 1.
inline std::vector<double> attn_ref(const std::vector<double>& qkv, const ops::AttentionShape& s, bool causal,
                                    const std::vector<int32_t>& mask, const ops::AttentionDropout& drop = {}) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  const ops::DropoutMask dm(drop.p, drop.seed, drop.site);
  const std::vector<double> P = attn_probs_ref(qkv, s, causal, mask);
  std::vector<double> out(static_cast<size_t>(B * L * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i)
        for (int64_t j = 0; j < L; ++j) {
          const uint64_t idx = static_cast<uint64_t>(((b * H + h) * L + i) * L + j);
          const double pk = P[idx] * attn_keep_ref(drop, dm, idx);
          for (int64_t k = 0; k < D; ++k) out[(b * L + i) * C + h * D + k] += pk * qkv[(b * L + j) * 3 * C + 2 * C + h * D + k];
        }
  return out;
}

}  // namespace clipkit::test
