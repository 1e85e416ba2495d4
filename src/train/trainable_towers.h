// Training-mode towers: HF CLIP ViT, CLIP text and RoBERTa, built from the same config and
// checkpoint as the inference towers (model/), with a forward that saves activations and a
// backward that accumulates gradients into the registered fp32 master weights.
// With gradient checkpointing only each layer's input is kept; the layer is re-run in backward.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "train/trainable_blocks.h"

namespace clipkit::train {

struct TowerOptions {
  bool gradient_checkpointing = false;
  // Gradients only for depth >= freeze_depth (-1: everything; 0: freeze embeddings; k: also layers < k).
  int freeze_depth = -1;
};

// Shared by the towers: a stack of encoder layers with saved inputs and caches.
class LayerStack {
 public:
  std::vector<TEncoderLayer> layers;
  // x [M, C] in: runs every layer; the output is in `out()`, [M, C]. pooled_only: the tower uses
  // only row pos[b] of each sequence (0 when pos is null), so the last layer computes just those
  // rows and out() is [B, C]; padded tokens (mask 0) are then dropped from every layer (LayerRows).
  void forward(const float* x, int64_t B, int64_t L, bool causal, const int32_t* mask, const StepContext& sc,
               uint64_t step_seed, bool keep, bool pooled_only = false, const int64_t* pos = nullptr);
  const float* out() const { return xs_.back().data(); }
  // dy (shaped as out()) -> dx [M, C] of the stack input (dx may be null when nothing below needs it).
  void backward(const float* dy, float* dx, int freeze_depth, const StepContext& sc);

 private:
  std::vector<std::vector<float>> xs_;  // input of layer i (xs_[n] = the output)
  std::vector<LayerCache> caches_;      // one per layer, or one shared when checkpointing
  std::vector<int64_t> in_, out_;  // the real tokens' padded rows; the pooled rows among the input rows
  LayerRows rows_, last_;           // what the layers compute: every layer but the last, the last
  void plan_rows(bool pooled_only, const int64_t* pos);
  const LayerRows& rows_for(size_t i) const;
  int64_t B_ = 0, L_ = 0;
  bool causal_ = false, ckpt_ = false;
  std::vector<int32_t> mask_;
  uint64_t seed_ = 0;

 public:
  bool gradient_checkpointing = false;
};

class TVisionTower {
 public:
  void load(const model::WeightReader& w, const model::VisionConfig& c, const TowerOptions& o, Registry& reg);
  // pixels [N, 3, S, S] -> pooled [N, C] (post_layernorm of the CLS token)
  void forward(const float* pixels, int64_t N, float* pooled, const StepContext& sc, uint64_t step_seed);
  void backward(const float* dpooled, const StepContext& sc);
  int64_t hidden() const { return cfg_.hidden_size; }

 private:
  model::VisionConfig cfg_;
  TowerOptions opt_;
  TLinear patch_;  // the patch convolution as a bias-free dense layer over im2col rows [C, CH*P*P]
  std::vector<float> cls_, cls_g_, pos_, pos_g_;
  TLayerNorm pre_ln_, post_ln_;
  LayerStack stack_;
  int64_t N_ = 0;
  std::vector<float> cols_, x0_, x1_, pre_mean_, pre_rstd_, cls_rows_, post_mean_, post_rstd_;
  Bf16Buf cols_b_;
};

class TTextTower {
 public:
  virtual ~TTextTower() = default;
  virtual void load(const model::WeightReader& w, const model::TextConfig& c, const TowerOptions& o, Registry& reg) = 0;
  // ids/mask [B, L] -> pooled [B, C]
  virtual void forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* pooled,
                       const StepContext& sc, uint64_t step_seed) = 0;
  virtual void backward(const float* dpooled, const StepContext& sc) = 0;
  virtual int64_t hidden() const = 0;
};

class TClipTextTower : public TTextTower {
 public:
  void load(const model::WeightReader& w, const model::TextConfig& c, const TowerOptions& o, Registry& reg) override;
  void forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* pooled, const StepContext& sc,
               uint64_t step_seed) override;
  void backward(const float* dpooled, const StepContext& sc) override;
  int64_t hidden() const override { return cfg_.hidden_size; }

 private:
  model::TextConfig cfg_;
  TowerOptions opt_;
  std::vector<float> tok_, tok_g_, pos_, pos_g_;
  TLayerNorm final_ln_;
  LayerStack stack_;
  int64_t B_ = 0, L_ = 0;
  std::vector<int32_t> ids_, pos_ids_;
  std::vector<int64_t> eos_;
  std::vector<float> x0_, eos_rows_, fin_mean_, fin_rstd_;
};

class TRobertaTower : public TTextTower {
 public:
  void load(const model::WeightReader& w, const model::TextConfig& c, const TowerOptions& o, Registry& reg) override;
  void forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, float* pooled, const StepContext& sc,
               uint64_t step_seed) override;
  void backward(const float* dpooled, const StepContext& sc) override;
  int64_t hidden() const override { return cfg_.hidden_size; }

 private:
  model::TextConfig cfg_;
  TowerOptions opt_;
  std::vector<float> word_, word_g_, pos_, pos_g_, type_, type_g_;
  TLayerNorm emb_ln_;
  LayerStack stack_;
  TLinear pooler_;
  bool has_pooler_ = false;
  int64_t B_ = 0, L_ = 0;
  uint64_t seed_ = 0;
  std::vector<int32_t> ids_, pos_ids_, zeros_;
  std::vector<float> e_, x0_, emb_mean_, emb_rstd_, first_, pooled_;
};

}  // namespace clipkit::train
