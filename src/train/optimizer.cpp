#include "train/optimizer.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <cctype>

#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::train {

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

bool hf_weight_decay(const std::string& name) {
  // HF: no decay inside LayerNorm modules or for names matching
  // bias | layernorm | rmsnorm | (^|\.)norm($|\.) | _norm($|\.)  (CLIP's layer_norm1/2, pre_layrnorm,
  // post_layernorm, final_layer_norm and RoBERTa's *.LayerNorm are LayerNorm modules)
  std::string n = name;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* sub : {"bias", "layernorm", "rmsnorm", "layer_norm", "layrnorm"})
    if (n.find(sub) != std::string::npos) return false;
  for (size_t p = n.find("norm"); p != std::string::npos; p = n.find("norm", p + 1)) {
    const bool end_ok = p + 4 == n.size() || n[p + 4] == '.';
    const bool start_ok = p == 0 || n[p - 1] == '.' || n[p - 1] == '_';
    if (start_ok && end_ok) return false;
  }
  return true;
}

AdamW::AdamW(std::vector<Param> params, AdamWConfig c) : params_(std::move(params)), c_(c) {
  for (auto& p : params_) {
    m_.emplace_back(static_cast<size_t>(p.n), 0.0f);
    v_.emplace_back(static_cast<size_t>(p.n), 0.0f);
  }
}

void AdamW::step(double lr, double grad_scale) {
  ProfileScope prof("adamw");
  ++t_;
  const double bc1 = 1.0 - std::pow(c_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(c_.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = static_cast<float>(c_.beta1), b2 = static_cast<float>(c_.beta2), eps = static_cast<float>(c_.eps);
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    const float decay = p.decay ? static_cast<float>(1.0 - lr * c_.weight_decay) : 1.0f;
    float* w = p.w;
    float* gr = p.g;
    float* m = m_[i].data();
    float* v = v_[i].data();
    parallel_for(p.n, [&](int64_t b, int64_t e) {
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

double grad_norm(const std::vector<Param>& params) {
  ProfileScope prof("grad_norm");
  // Each tensor's sum of squares with 16 double lanes in a fixed order, tensors spread over the
  // threads (largest first), then summed in tensor order: the same result for any thread count.
  const int64_t n = static_cast<int64_t>(params.size());
  std::vector<double> sums(params.size(), 0.0);
  std::vector<int64_t> order(params.size());
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return params[a].n > params[b].n; });
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
  for (int64_t i = 0; i < n; ++i) {
    const Param& p = params[order[i]];
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int64_t k = 0;
    for (; k + 16 <= p.n; k += 16)
      for (int j = 0; j < 4; ++j) {
        const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(p.g + k + 4 * j));
        acc[j] = _mm256_fmadd_pd(x, x, acc[j]);
      }
    alignas(32) double lanes[16];
    for (int j = 0; j < 4; ++j) _mm256_store_pd(lanes + 4 * j, acc[j]);
    double s = 0;
    for (double l : lanes) s += l;
    for (; k < p.n; ++k) s += static_cast<double>(p.g[k]) * p.g[k];
    sums[order[i]] = s;
  }
  double total = 0;
  for (double s : sums) total += s;
  return std::sqrt(total);
}

double clip_coefficient(double total, double max_norm) {
  return max_norm > 0 ? std::min(1.0, max_norm / (total + 1e-6)) : 1.0;
}

double clip_grad_norm(const std::vector<Param>& params, double max_norm) {
  const double total = grad_norm(params);
  const double coef = clip_coefficient(total, max_norm);
  if (coef < 1.0)
    for (auto& p : params)
      parallel_for(p.n, [&](int64_t b, int64_t e) { scale_gradients(p.g + b, e - b, coef); }, 1 << 14);
  return total;
}

Schedule schedule_from_name(const std::string& s) {
  if (s == "linear") return Schedule::Linear;
  if (s == "cosine") return Schedule::Cosine;
  if (s == "constant" || s == "constant_with_warmup") return Schedule::Constant;
  fail("unknown --lr-scheduler \"{}\" (linear, cosine, constant)", s);
}

double lr_factor(Schedule s, int64_t k, int64_t N, int64_t W) {
  if (k < W) return static_cast<double>(k) / std::max<int64_t>(1, W);
  switch (s) {
    case Schedule::Linear:
      return std::max(0.0, static_cast<double>(N - k) / std::max<int64_t>(1, N - W));
    case Schedule::Cosine: {
      const double progress = static_cast<double>(k - W) / std::max<int64_t>(1, N - W);
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    }
    case Schedule::Constant:
      return 1.0;
  }
  return 1.0;
}

}  // namespace clipkit::train
