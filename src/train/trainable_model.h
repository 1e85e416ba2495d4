// A dual encoder in training mode: both towers (trainable_towers.h), the two bias-free
// projections and logit_scale, every tensor a registered fp32 master with its gradient, named by
// its HF state-dict key (so checkpoints write them straight back over the source checkpoint).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "model/config.h"
#include "train/optimizer.h"
#include "train/trainable_towers.h"

namespace clipkit::train {

struct TrainableOptions {
  ops::Precision precision = ops::Precision::F32;
  bool gradient_checkpointing = false;
  // The config's dropout in training (false = --no-dropout): RoBERTa's hidden dropout, and each
  // tower's attention-probability dropout (attention_probs_dropout_prob / attention_dropout).
  bool dropout = true;
  // Freezing: a frozen tower gets no tensors in params(); freeze_*_layers K > 0 freezes the
  // embeddings and the first K encoder layers of that tower.
  bool freeze_vision = false, freeze_text = false;
  int freeze_vision_layers = 0, freeze_text_layers = 0;
  uint64_t seed = 42;  // dropout masks
};

class TrainableClip {
 public:
  static std::unique_ptr<TrainableClip> load(const std::string& dir, const TrainableOptions& o);

  const model::ModelConfig& config() const { return cfg_; }
  int64_t embed_dim() const { return P_; }
  int64_t vision_hidden() const { return vision_.hidden(); }
  int64_t text_hidden() const { return text_->hidden(); }

  // Tower + projection. `training` saves activations (and applies dropout); step picks the masks.
  // pixels [N, 3, S, S] -> emb [N, P];  ids/mask [B, L] -> emb [B, P] (unnormalized)
  void vision_forward(const float* pixels, int64_t N, float* emb, bool training, uint64_t step);
  void text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* emb, bool training,
                    uint64_t step);
  // From d emb: projection gradient, then (unless the tower is frozen) through the tower; the
  // tower's gradients are final afterwards (settled, see zero_grad).
  void vision_backward(const float* demb);
  void text_backward(const float* demb);
  // Projection only, for a frozen tower's cached pooled features [N, C].
  void project_vision(const float* pooled, int64_t N, float* emb);
  void project_text(const float* pooled, int64_t N, float* emb);

  float logit_scale = 0, g_logit_scale = 0;

  // Every tensor of the model (frozen ones included), bottom-up per tower.
  const Registry& tensors() const { return reg_; }
  // The trainable ones as optimizer params (HF decay rule).
  std::vector<Param> params();
  // Clears every gradient. Dense layers' buffers are cleared lazily (GradState): their next
  // backward overwrites them, and vision_backward / text_backward settle the rest of their tower,
  // so after zero_grad + both backwards every gradient is this step's. A step that skips a
  // backward (a rank with no samples) calls settle_grads() before reading gradients.
  void zero_grad();
  void settle_grads();
  // The trained tensors as fp32, for write_hf_checkpoint.
  std::map<std::string, Tensor> trained_state();
  // Loads values of every registered tensor present in a checkpoint folder (resume).
  void load_state(const std::string& dir);

 private:
  bool trainable(const TensorEntry& e) const;
  void settle_grads(size_t begin, size_t end);
  model::ModelConfig cfg_;
  TrainableOptions opt_;
  StepContext sc_;
  float vision_attn_drop_ = 0, text_attn_drop_ = 0;  // StepContext::attention_dropout per tower
  Registry reg_;
  size_t vision_end_ = 0, text_end_ = 0;  // reg_: vision tower [0, vision_end_), text [vision_end_, text_end_)
  TVisionTower vision_;
  std::unique_ptr<TTextTower> text_;
  int64_t P_ = 0, Cv_ = 0, Ct_ = 0;
  std::vector<float> wv_, gv_, wt_, gt_;
  std::vector<float> pooled_v_, pooled_t_;  // saved projection inputs
  int64_t Nv_ = 0, Nt_ = 0;
  std::string vision_prefix_, text_prefix_;
};

}  // namespace clipkit::train
