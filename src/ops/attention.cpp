#include "ops/attention.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "ops/vec_math.h"

namespace clipkit::ops {

void attention_forward(const float* qkv, float* out, const AttentionShape& s, bool causal, const int32_t* key_mask,
                       float* probs) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  parallel_for(B * H, [&](int64_t begin, int64_t end) {
    std::vector<float> sc(static_cast<size_t>(L));
    std::vector<float> acc(static_cast<size_t>(D));
    std::vector<float> kt(static_cast<size_t>(L * D)), vt(static_cast<size_t>(L * D));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * L * C3;
      const int32_t* km = key_mask ? key_mask + b * L : nullptr;
      // gather this head's keys and values contiguously: [L, D]
      for (int64_t j = 0; j < L; ++j) {
        std::memcpy(kt.data() + j * D, base + j * C3 + C + h * D, sizeof(float) * D);
        std::memcpy(vt.data() + j * D, base + j * C3 + 2 * C + h * D, sizeof(float) * D);
      }
      for (int64_t i = 0; i < L; ++i) {
        const float* q = base + i * C3 + h * D;
        const int64_t jend = causal ? i + 1 : L;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < jend; ++j) {
          const float* k = kt.data() + j * D;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
          const bool masked = km && km[j] == 0;
          sc[j] = masked ? -std::numeric_limits<float>::infinity() : dot * scale;
          mx = std::max(mx, sc[j]);
        }
        float sum = 0;
        float* scp = sc.data();
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < jend; ++j) {
          const float p = scp[j] == -std::numeric_limits<float>::infinity() ? 0.0f : exp_approx(scp[j] - mx);
          scp[j] = p;
          sum += p;
        }
        const float inv = sum > 0 ? 1.0f / sum : 0.0f;  // a fully masked row (never in CLIP) gives zeros
        float* a = acc.data();
        std::fill(a, a + D, 0.0f);
        for (int64_t j = 0; j < jend; ++j) {
          const float p = scp[j] * inv;
          scp[j] = p;
          if (p == 0) continue;
          const float* v = vt.data() + j * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) a[d] += p * v[d];
        }
        std::memcpy(out + (b * L + i) * C + h * D, a, sizeof(float) * D);
        if (probs) {
          float* pr = probs + ((b * H + h) * L + i) * L;
          std::memcpy(pr, scp, sizeof(float) * jend);
          std::fill(pr + jend, pr + L, 0.0f);
        }
      }
    }
  });
}

void attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, const AttentionShape& s) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::memset(dqkv, 0, sizeof(float) * B * L * C3);
  parallel_for(B * H, [&](int64_t begin, int64_t end) {
    std::vector<float> dp(static_cast<size_t>(L));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * L * C3;
      float* dbase = dqkv + b * L * C3;
      const float* P = probs + (b * H + h) * L * L;
      for (int64_t i = 0; i < L; ++i) {
        const float* go = dout + (b * L + i) * C + h * D;
        const float* pr = P + i * L;
        // dV_j += p_ij * dout_i ; dP_ij = dout_i . v_j
        float dot_pd = 0;
        for (int64_t j = 0; j < L; ++j) {
          if (pr[j] == 0) { dp[j] = 0; continue; }
          const float* v = base + j * C3 + 2 * C + h * D;
          float* dv = dbase + j * C3 + 2 * C + h * D;
          float g = 0;
          for (int64_t d = 0; d < D; ++d) {
            g += go[d] * v[d];
            dv[d] += pr[j] * go[d];
          }
          dp[j] = g;
          dot_pd += pr[j] * g;
        }
        // dS_ij = p_ij (dP_ij - sum_k p_ik dP_ik); dq_i += scale dS_ij k_j ; dk_j += scale dS_ij q_i
        const float* q = base + i * C3 + h * D;
        float* dq = dbase + i * C3 + h * D;
        for (int64_t j = 0; j < L; ++j) {
          if (pr[j] == 0) continue;
          const float ds = pr[j] * (dp[j] - dot_pd) * scale;
          const float* k = base + j * C3 + C + h * D;
          float* dk = dbase + j * C3 + C + h * D;
          for (int64_t d = 0; d < D; ++d) {
            dq[d] += ds * k[d];
            dk[d] += ds * q[d];
          }
        }
      }
    }
  });
}

}  // namespace clipkit::ops
