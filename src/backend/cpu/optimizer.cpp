#include "backend/cpu/optimizer.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::backend::cpu {

namespace {

// g = float(double(g) * coef), 8 lanes at a time (the same roundings as the scalar tail).
void scale_gradients(float* g, int64_t n, double coef) {
  const __m256d c = _mm256_set1_pd(coef);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256d lo = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(g + k)), c);
    const __m256d hi = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(g + k + 4)), c);
    _mm_storeu_ps(g + k, _mm256_cvtpd_ps(lo));
    _mm_storeu_ps(g + k + 4, _mm256_cvtpd_ps(hi));
  }
  for (; k < n; ++k) g[k] = static_cast<float>(g[k] * coef);
}

}  // namespace

void adamw(const std::vector<OptimizerSlot>& slots, const AdamWStep& s) {
  ProfileScope prof("adamw");
  const double lr = s.lr, grad_scale = s.grad_scale;
  const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.t));
  const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.t));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = static_cast<float>(s.beta1), b2 = static_cast<float>(s.beta2), eps = static_cast<float>(s.eps);
  for (const OptimizerSlot& p : slots) {
    const float decay = p.decay ? static_cast<float>(1.0 - lr * s.weight_decay) : 1.0f;
    float* w = p.w.as<float>();
    float* gr = p.g.as<float>();
    float* m = p.m.as<float>();
    float* v = p.v.as<float>();
    parallel_for(p.w.numel(), [&](int64_t b, int64_t e) {
      if (grad_scale != 1.0) scale_gradients(gr + b, e - b, grad_scale);
      // 8 lanes with AVX2, the same IEEE operations as the scalar tail (which GCC compiled with
      // exactly these two FMAs before this loop was vectorized by hand: keep them in step)
      const __m256 vdecay = _mm256_set1_ps(decay), vb2 = _mm256_set1_ps(b2), c1 = _mm256_set1_ps(1.0f - b1),
                   c2 = _mm256_set1_ps(1.0f - b2), vbc2 = _mm256_set1_ps(bc2_sqrt), veps = _mm256_set1_ps(eps),
                   vstep = _mm256_set1_ps(step_size);
      int64_t k = b;
      for (; k + 8 <= e; k += 8) {
        const __m256 g = _mm256_loadu_ps(gr + k);
        __m256 wk = _mm256_mul_ps(_mm256_loadu_ps(w + k), vdecay);
        __asm__("" : "+x"(wk));  // keep w * decay rounded: GCC would fuse it into the update below
        __m256 mk = _mm256_loadu_ps(m + k);
        mk = _mm256_fmadd_ps(_mm256_sub_ps(g, mk), c1, mk);
        __m256 vk = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), vb2, _mm256_mul_ps(_mm256_mul_ps(c2, g), g));
        const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vk), vbc2), veps);
        wk = _mm256_sub_ps(wk, _mm256_div_ps(_mm256_mul_ps(vstep, mk), denom));
        _mm256_storeu_ps(m + k, mk);
        _mm256_storeu_ps(v + k, vk);
        _mm256_storeu_ps(w + k, wk);
      }
      for (; k < e; ++k) {
        const float g = gr[k];
        float wk = w[k] * decay;
        __asm__("" : "+x"(wk));
        m[k] = std::fma(g - m[k], 1.0f - b1, m[k]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
        v[k] = std::fma(v[k], b2, (1.0f - b2) * g * g);
        const float denom = std::sqrt(v[k]) / bc2_sqrt + eps;
        w[k] = wk - step_size * m[k] / denom;
      }
    }, 1 << 14);
  }
}

double grad_norm(const std::vector<Tensor>& params) {
  ProfileScope prof("grad_norm");
  // Each tensor's sum of squares with 16 double lanes in a fixed order, tensors spread over the
  // threads (largest first), then summed in tensor order: the same result for any thread count.
  const int64_t n = static_cast<int64_t>(params.size());
  std::vector<double> sums(params.size(), 0.0);
  std::vector<int64_t> order(params.size());
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return params[a].numel() > params[b].numel(); });
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) {
    const float* g = params[order[i]].as<float>();
    const int64_t n_el = params[order[i]].numel();
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int64_t k = 0;
    for (; k + 16 <= n_el; k += 16)
      for (int j = 0; j < 4; ++j) {
        const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(g + k + 4 * j));
        acc[j] = _mm256_fmadd_pd(x, x, acc[j]);
      }
    alignas(32) double lanes[16];
    for (int j = 0; j < 4; ++j) _mm256_store_pd(lanes + 4 * j, acc[j]);
    double s = 0;
    for (double l : lanes) s += l;
    for (; k < n_el; ++k) s += static_cast<double>(g[k]) * g[k];
    sums[order[i]] = s;
  }
  double total = 0;
  for (double s : sums) total += s;
  return std::sqrt(total);
}

}  // namespace clipkit::backend::cpu
