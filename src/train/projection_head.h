// The trainable head of a dual encoder with frozen towers: the two bias-free projections and
// logit_scale. Forward and backward side by side.
//   img_emb [B, P] = pooled_img [B, Cv] @ Wv^T      dWv += dimg^T @ pooled_img
//   txt_emb [B, P] = pooled_txt [B, Ct] @ Wt^T      dWt += dtxt^T @ pooled_txt
#pragma once
#include <cstdint>
#include <vector>

#include "train/optimizer.h"

namespace clipkit::train {

struct ProjectionHead {
  int64_t P = 0, Cv = 0, Ct = 0;
  std::vector<float> wv, wt, gv, gt;  // [P, Cv], [P, Ct] and their gradients
  float logit_scale = 0, g_logit_scale = 0;

  void init(std::vector<float> visual_w, std::vector<float> text_w, int64_t P, int64_t Cv, int64_t Ct, float logit_scale);
  void project_images(const float* pooled, int64_t B, float* emb) const;
  void project_texts(const float* pooled, int64_t B, float* emb) const;
  void backward(const float* pooled_img, const float* pooled_txt, const float* dimg, const float* dtxt, int64_t B);
  void zero_grad();
  // visual_projection.weight, text_projection.weight, logit_scale -- all weight-decayed, as HF does
  std::vector<Param> params();
};

}  // namespace clipkit::train
