// CLIP ViT vision tower (HF CLIPVisionTransformer).
//   pixels [N, 3, S, S] -> patches (conv k=s=P, no bias) [N, G*G, C]; prepend class token
//   + position embedding -> pre_layrnorm -> pre-LN encoder layers -> last_hidden_state [N, T, C]
//   pooled = post_layernorm(last_hidden_state[:, 0])                                    [N, C]
#pragma once
#include "model/tower.h"

namespace clipkit::model {

class ClipVisionTower {
 public:
  void load(ParamSet& ps, const WeightReader& r, const VisionConfig& c, const LoadPlan& plan);
  // pixels (host) [N, 3, S, S] -> pooled [N, C]; hidden (optional): [N*T, C]
  Tensor forward(Pass& p, const float* pixels, int64_t N, TowerSaved* s, Tensor* hidden) const;
  void backward(Pass& p, const Tensor& dpooled, TowerSaved& s);
  const VisionConfig& config() const { return cfg_; }

 private:
  VisionConfig cfg_;
  Linear patch_;  // the patch convolution as a linear layer over im2col rows [C, CH*P*P]
  Weight cls_, pos_;
  LayerNorm pre_ln_, post_ln_;
  LayerStack stack_;
};

}  // namespace clipkit::model
