#include "train/projection_head.h"

#include <algorithm>

#include "ops/linear.h"

namespace clipkit::train {

void ProjectionHead::init(std::vector<float> v, std::vector<float> t, int64_t p, int64_t cv, int64_t ct, float s) {
  P = p;
  Cv = cv;
  Ct = ct;
  wv = std::move(v);
  wt = std::move(t);
  gv.assign(wv.size(), 0.0f);
  gt.assign(wt.size(), 0.0f);
  logit_scale = s;
  g_logit_scale = 0;
}

void ProjectionHead::project_images(const float* pooled, int64_t B, float* emb) const {
  ops::sgemm(false, true, B, P, Cv, 1.0f, pooled, Cv, wv.data(), Cv, 0.0f, emb, P);
}

void ProjectionHead::project_texts(const float* pooled, int64_t B, float* emb) const {
  ops::sgemm(false, true, B, P, Ct, 1.0f, pooled, Ct, wt.data(), Ct, 0.0f, emb, P);
}

void ProjectionHead::backward(const float* pooled_img, const float* pooled_txt, const float* dimg, const float* dtxt,
                              int64_t B) {
  ops::sgemm(true, false, P, Cv, B, 1.0f, dimg, P, pooled_img, Cv, 1.0f, gv.data(), Cv);
  ops::sgemm(true, false, P, Ct, B, 1.0f, dtxt, P, pooled_txt, Ct, 1.0f, gt.data(), Ct);
}

void ProjectionHead::zero_grad() {
  std::fill(gv.begin(), gv.end(), 0.0f);
  std::fill(gt.begin(), gt.end(), 0.0f);
  g_logit_scale = 0;
}

std::vector<Param> ProjectionHead::params() {
  return {{"visual_projection.weight", wv.data(), gv.data(), static_cast<int64_t>(wv.size()), true},
          {"text_projection.weight", wt.data(), gt.data(), static_cast<int64_t>(wt.size()), true},
          {"logit_scale", &logit_scale, &g_logit_scale, 1, true}};
}

}  // namespace clipkit::train
