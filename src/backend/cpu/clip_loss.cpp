#include "backend/cpu/clip_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace clipkit::backend::cpu {

ClipLossResult clip_loss(const float* img, const float* txt, int64_t B, int64_t P, float logit_scale, float* dimg,
                         float* dtxt) {
  // everything in double: B x B is small and the loss is the training signal we compare step by step
  std::vector<double> a(static_cast<size_t>(B * P)), b(static_cast<size_t>(B * P)), na(B), nb(B);
  for (int64_t i = 0; i < B; ++i) {
    double sa = 0, sb = 0;
    for (int64_t k = 0; k < P; ++k) {
      sa += static_cast<double>(img[i * P + k]) * img[i * P + k];
      sb += static_cast<double>(txt[i * P + k]) * txt[i * P + k];
    }
    na[i] = std::sqrt(sa);
    nb[i] = std::sqrt(sb);
    for (int64_t k = 0; k < P; ++k) {
      a[i * P + k] = img[i * P + k] / na[i];
      b[i * P + k] = txt[i * P + k] / nb[i];
    }
  }
  const double scale = std::exp(static_cast<double>(logit_scale));
  std::vector<double> L(static_cast<size_t>(B * B));  // logits_per_text [text j, image i]
  for (int64_t j = 0; j < B; ++j)
    for (int64_t i = 0; i < B; ++i) {
      double d = 0;
      for (int64_t k = 0; k < P; ++k) d += b[j * P + k] * a[i * P + k];
      L[j * B + i] = scale * d;
    }
  // G = dloss/dL: rows (text->image CE) and columns (image->text CE), each averaged over B and halved
  std::vector<double> G(static_cast<size_t>(B * B), 0.0);
  double loss = 0;
  for (int64_t j = 0; j < B; ++j) {  // row softmax
    double mx = -1e300, s = 0;
    for (int64_t i = 0; i < B; ++i) mx = std::max(mx, L[j * B + i]);
    for (int64_t i = 0; i < B; ++i) s += std::exp(L[j * B + i] - mx);
    loss += (std::log(s) + mx - L[j * B + j]) / (2.0 * B);
    for (int64_t i = 0; i < B; ++i) G[j * B + i] += (std::exp(L[j * B + i] - mx) / s - (i == j)) / (2.0 * B);
  }
  for (int64_t i = 0; i < B; ++i) {  // column softmax
    double mx = -1e300, s = 0;
    for (int64_t j = 0; j < B; ++j) mx = std::max(mx, L[j * B + i]);
    for (int64_t j = 0; j < B; ++j) s += std::exp(L[j * B + i] - mx);
    loss += (std::log(s) + mx - L[i * B + i]) / (2.0 * B);
    for (int64_t j = 0; j < B; ++j) G[j * B + i] += (std::exp(L[j * B + i] - mx) / s - (i == j)) / (2.0 * B);
  }
  ClipLossResult r;
  r.loss = loss;
  for (int64_t n = 0; n < B * B; ++n) r.dlogit_scale += G[n] * L[n];  // dL/ds = L (L = e^s * cos)
  // d a_i = e^s sum_j G[j,i] b_j ; d b_j = e^s sum_i G[j,i] a_i ; then through the normalization:
  // x -> x/|x| has Jacobian (I - u u^T)/|x|
  auto backprop = [&](bool image, float* out) {
    if (!out) return;
    std::vector<double> du(static_cast<size_t>(P));
    for (int64_t r0 = 0; r0 < B; ++r0) {
      std::fill(du.begin(), du.end(), 0.0);
      for (int64_t o = 0; o < B; ++o) {
        const double g = image ? G[o * B + r0] : G[r0 * B + o];
        const double* other = image ? &b[o * P] : &a[o * P];
        for (int64_t k = 0; k < P; ++k) du[k] += scale * g * other[k];
      }
      const double* u = image ? &a[r0 * P] : &b[r0 * P];
      double dot = 0;
      for (int64_t k = 0; k < P; ++k) dot += u[k] * du[k];
      const double inv = 1.0 / (image ? na[r0] : nb[r0]);
      for (int64_t k = 0; k < P; ++k) out[r0 * P + k] = static_cast<float>((du[k] - u[k] * dot) * inv);
    }
  };
  backprop(true, dimg);
  backprop(false, dtxt);
  return r;
}

}  // namespace clipkit::backend::cpu
