#include "backend/cpu/layernorm.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::backend::cpu {

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, int64_t M, int64_t C, float eps,
                       float* mean_out, float* rstd_out) {
  ProfileScope prof("layernorm");
  parallel_for(M, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const float* xr = x + m * C;
      float* yr = y + m * C;
      // two passes (mean, then centered variance): accurate without double accumulation
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t c = 0; c < C; ++c) s += xr[c];
      const float mean = s / static_cast<float>(C);
      float v = 0;
#pragma omp simd reduction(+ : v)
      for (int64_t c = 0; c < C; ++c) v += (xr[c] - mean) * (xr[c] - mean);
      const float rstd = 1.0f / std::sqrt(v / static_cast<float>(C) + eps);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
      if (mean_out) mean_out[m] = mean;
      if (rstd_out) rstd_out[m] = rstd;
    }
  }, 8);
}

void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                        float* dx, float* dgamma, float* dbeta, int64_t M, int64_t C) {
  ProfileScope prof("layernorm bwd");
  int nt = num_threads();
  std::vector<float> dg(static_cast<size_t>(nt) * C, 0.0f), db(static_cast<size_t>(nt) * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    float* dgt = dg.data() + static_cast<size_t>(t) * C;
    float* dbt = db.data() + static_cast<size_t>(t) * C;
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* dyr = dy + m * C;
      const float* xr = x + m * C;
      float mu = mean[m], rs = rstd[m];
      // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
      // (vector lanes of double sums: a serial double chain made this pass latency-bound)
      double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t c = 0; c < C; ++c) {
        float xh = (xr[c] - mu) * rs;
        float dxh = dyr[c] * gamma[c];
        s1 += dxh;
        s2 += static_cast<double>(dxh) * xh;
        dgt[c] += dyr[c] * xh;
        dbt[c] += dyr[c];
      }
      float m1 = static_cast<float>(s1 / C), m2 = static_cast<float>(s2 / C);
      float* dxr = dx + m * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        float xh = (xr[c] - mu) * rs;
        dxr[c] = rs * (dyr[c] * gamma[c] - m1 - xh * m2);
      }
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int64_t c = 0; c < C; ++c) {
      dgamma[c] += dg[static_cast<size_t>(t) * C + c];
      dbeta[c] += db[static_cast<size_t>(t) * C + c];
    }
}

}  // namespace clipkit::backend::cpu
