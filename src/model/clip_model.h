// A CLIP-style dual encoder: vision tower + text tower + bias-free projections + logit_scale.
// One class serves HF CLIPModel ("clip") and VisionTextDualEncoderModel ("vision-text-dual-encoder"),
// and the single-tower checkpoints (clip_vision_model / clip_text_model / roberta) for their half.
#pragma once
#include <memory>
#include <string>

#include "model/clip_text.h"
#include "model/clip_vision.h"
#include "model/config.h"
#include "model/roberta.h"

namespace clipkit::model {

struct LoadOptions {
  ops::Precision precision = ops::Precision::F32;
};

class ClipModel {
 public:
  // model: a folder, a hub id in the local Hugging Face cache, or a cache folder (io/model_location.h);
  // dir() is the folder it resolved to.
  static std::unique_ptr<ClipModel> load(const std::string& model, const LoadOptions& o = {});

  const ModelConfig& config() const { return cfg_; }
  const std::string& dir() const { return dir_; }
  bool has_vision() const { return vision_ != nullptr; }
  bool has_text() const { return text_ != nullptr; }
  bool has_projections() const { return has_proj_; }
  ops::Precision precision() const { return prec_; }

  // HF get_image_features: pixels [N, 3, S, S] -> [N, projection_dim] (unnormalized).
  Tensor image_features(const float* pixels, int64_t N) const;
  // HF get_text_features: ids/mask [B, L] -> [B, projection_dim] (unnormalized).
  Tensor text_features(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L) const;
  // Tower outputs before projection (hidden states on request), for parity tests and training.
  TowerOutput vision_forward(const float* pixels, int64_t N, bool want_hidden) const;
  TowerOutput text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const;

  float logit_scale() const { return logit_scale_; }  // the stored (log) value; logits use exp()
  int64_t embed_dim() const { return cfg_.projection_dim; }
  int image_size() const { return vision_ ? vision_->config().image_size : 0; }
  int64_t max_text_length() const { return text_ ? text_->max_positions() : 0; }
  int64_t param_count() const;
  int64_t vision_param_count() const { return vision_ ? vision_->param_count() : 0; }
  int64_t text_param_count() const { return text_ ? text_->param_count() : 0; }
  std::string architecture() const;  // e.g. "CLIPModel (ViT-B/32 + CLIP text)"
  const std::string& weights_dtype() const { return weights_dtype_; }

 private:
  ModelConfig cfg_;
  std::string dir_, weights_dtype_;
  ops::Precision prec_ = ops::Precision::F32;
  std::unique_ptr<ClipVisionTower> vision_;
  std::unique_ptr<TextTower> text_;
  ops::Linear visual_projection_, text_projection_;
  bool has_proj_ = false;
  float logit_scale_ = 2.6592f;
};

// In-place L2 normalization of the rows of x [N, D].
void l2_normalize_rows(float* x, int64_t N, int64_t D);

}  // namespace clipkit::model
