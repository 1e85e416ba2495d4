// A CLIP-style dual encoder: vision tower + text tower + bias-free projections + logit_scale, on a
// compute backend. One class serves HF CLIPModel ("clip") and VisionTextDualEncoderModel
// ("vision-text-dual-encoder"), and the single-tower checkpoints (clip_vision_model /
// clip_text_model / roberta) for their half; for inference, evaluation and training alike.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "model/clip_text.h"
#include "model/clip_vision.h"
#include "model/config.h"
#include "model/roberta.h"

namespace clipkit::model {

struct LoadOptions {
  backend::Precision precision = backend::Precision::F32;
  std::string device = "cpu";
  // Training: the unfrozen parts get gradients (the projections and logit_scale always do); a
  // tower that trains keeps its weights in the backend's training form, a frozen one in its
  // inference form. freeze_*_layers K > 0 freezes the tower's embeddings and first K layers.
  bool train = false;
  bool freeze_vision = false, freeze_text = false;
  int freeze_vision_layers = 0, freeze_text_layers = 0;
  bool gradient_checkpointing = false;  // recompute each layer's activations in backward
  bool dropout = true;                  // the config's dropout in training passes
  uint64_t seed = 42;                   // dropout masks
  // The towers to load: an image-only job (bulk embedding, index build) leaves the text tower on
  // disk, and a text-only one the vision tower. A tower left out reports has_vision()/has_text()
  // false; config() and architecture() still describe the whole model.
  bool vision = true, text = true;
  // Refuse weights holding NaN or infinity (Error naming the tensor): the loaded parts' tensors.
  bool check_finite = true;
  // A model loaded only to run (train false) reads the weights it does not transform (embeddings,
  // norms, biases; the fp32 ones the matmuls pack from) from the memory-mapped checkpoint instead of
  // a copy: no copy at load, nothing of theirs left in memory but the page cache. The checkpoint
  // file must then not be rewritten in place while the model lives (replace it by renaming a new
  // file over it, as clipkit's writers do). false: copy them (a long-running server).
  bool map_weights = true;
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
  // Why a tower is absent: "this model has no text tower", or that it was left out at load.
  std::string missing_tower(Part tower) const;
  bool has_projections() const { return visual_proj_ || text_proj_; }
  backend::Precision precision() const { return opt_.precision; }
  backend::Backend& backend() const { return be_; }

  // ---- inference: host in, host out; any thread ----
  // HF get_image_features: pixels [N, 3, S, S] -> [N, projection_dim] (unnormalized).
  clipkit::Tensor image_features(const float* pixels, int64_t N) const;
  // HF get_text_features: ids/mask [B, L] -> [B, projection_dim] (unnormalized).
  clipkit::Tensor text_features(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L) const;
  // Tower outputs before projection (hidden states on request).
  TowerOutput vision_forward(const float* pixels, int64_t N, bool want_hidden) const;
  TowerOutput text_forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const;

  // ---- training: backend tensors in the calling thread's arena (keep a Scope around a step) ----
  // Embeddings [n, P] (unnormalized). `train`: a training pass of optimizer step `step` (dropout,
  // activations kept for backward). A frozen tower's embeddings come from its cached pooled
  // outputs: project() (host [n, C], kept alive until the backward).
  Tensor embed_images(const float* pixels, int64_t N, bool train, uint64_t step);
  Tensor embed_texts(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool train, uint64_t step);
  Tensor project(Part tower, const float* pooled, int64_t n, bool train);
  // From d embeddings: the projection's gradients, then (unless the tower is frozen) the tower's.
  void backward(Part tower, const Tensor& demb);
  // Clears every gradient (linear layers lazily, see ParamBuffer); settles what no backward wrote.
  void zero_grad() { params_.zero_grad(); }
  void settle_grads() { params_.settle_grads(); }

  // Every tensor (frozen ones included), bottom-up per tower, then the head.
  const std::deque<Param>& params() const { return params_.all(); }
  std::vector<Param*> trainable();
  Param& logit_scale_param() { return *logit_scale_; }
  // The trained tensors as fp32 host copies by HF name (for checkpoints); loading them back.
  std::map<std::string, clipkit::Tensor> trained_state() const;
  void load_state(const std::map<std::string, clipkit::Tensor>& tensors, const std::string& source);

  float logit_scale() const;  // the stored (log) value; logits use exp()
  int64_t embed_dim() const { return cfg_.projection_dim; }
  int image_size() const { return vision_ ? vision_->config().image_size : 0; }
  int64_t max_text_length() const { return text_ ? text_->max_positions() : 0; }
  int64_t param_count() const;
  int64_t vision_param_count() const { return count(Part::Vision); }
  int64_t text_param_count() const { return count(Part::Text); }
  std::string architecture() const;  // e.g. "CLIPModel: ViT-B/32 (...) + CLIP text (...)"
  const std::string& weights_dtype() const { return weights_dtype_; }

  explicit ClipModel(backend::Backend& be) : be_(be), params_(be) {}

 private:
  Pass pass(backend::Arena& a, bool train, Part tower, uint64_t step) const;
  template <typename Forward>
  TowerOutput infer(Part tower, bool project, bool want_hidden, Forward&& forward) const;
  Tensor project_pooled(Pass& p, Part tower, const Tensor& pooled, Tensor* saved) const;
  int64_t count(Part part) const;

  backend::Backend& be_;
  ModelConfig cfg_;
  LoadOptions opt_;
  std::string dir_, weights_dtype_;
  ParamSet params_;
  std::unique_ptr<ClipVisionTower> vision_;
  std::unique_ptr<TextTower> text_;
  std::unique_ptr<Linear> visual_proj_, text_proj_;
  Param* logit_scale_ = nullptr;
  float logit_scale_init_ = 2.6592f;  // single-tower checkpoints have no logit_scale tensor
  // training: what the last training pass of each tower kept for its backward
  TowerSaved vision_saved_, text_saved_;
  Tensor vision_proj_x_, text_proj_x_;  // the projections' saved inputs
  bool vision_trains_ = false, text_trains_ = false;
  uint64_t vision_step_ = 0, text_step_ = 0;  // of the last training pass
};

// In-place L2 normalization of the rows of x [N, D] (host).
void l2_normalize_rows(float* x, int64_t N, int64_t D);

}  // namespace clipkit::model
