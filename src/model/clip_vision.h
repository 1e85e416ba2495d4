// CLIP ViT vision tower (HF CLIPVisionTransformer).
//   pixels [N, 3, S, S] -> patches (conv k=s=P, no bias) [N, P*P', C] ; prepend class token
//   + position embedding -> pre_layrnorm -> pre-LN encoder layers -> last_hidden_state [N, T, C]
//   pooled = post_layernorm(last_hidden_state[:, 0])                                    [N, C]
#pragma once
#include <vector>

#include "model/blocks.h"
#include "model/config.h"
#include "model/tower.h"

namespace clipkit::model {

class ClipVisionTower {
 public:
  void load(const WeightReader& w, const VisionConfig& c, ops::Precision p);
  TowerOutput forward(const float* pixels, int64_t N, bool want_hidden) const;
  const VisionConfig& config() const { return cfg_; }
  int64_t param_count() const;

 private:
  VisionConfig cfg_;
  ops::Linear patch_embed_;  // conv as matmul over (c, ky, kx)-flattened patches, no bias
  std::vector<float> class_embedding_, position_embedding_;
  LayerNorm pre_ln_, post_ln_;
  std::vector<EncoderLayer> layers_;
};

}  // namespace clipkit::model
