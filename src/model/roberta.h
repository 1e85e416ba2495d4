// RoBERTa text tower (HF RobertaModel with pooler).
//   position_ids = padding_idx + cumsum(ids != pad) for real tokens, padding_idx for pads
//   x = LN(word[ids] + position[position_ids] + token_type[0]) -> post-LN layers (padding mask)
//   last_hidden_state [B, L, C]; pooled = tanh(pooler.dense(h[:, 0]))   [B, C]
// Training applies hidden_dropout_prob after the embeddings and in every layer.
#pragma once
#include "model/tower.h"

namespace clipkit::model {

class RobertaTextTower : public TextTower {
 public:
  void load(ParamSet& ps, const WeightReader& r, const TextConfig& c, const LoadPlan& plan) override;
  Tensor forward(Pass& p, const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, TowerSaved* s,
                 Tensor* hidden) const override;
  void backward(Pass& p, const Tensor& dpooled, TowerSaved& s) override;
  int64_t hidden_size() const override { return cfg_.hidden_size; }
  int64_t max_positions() const override { return cfg_.max_position_embeddings - cfg_.pad_token_id - 1; }
  const char* name() const override { return "roberta"; }

 private:
  TextConfig cfg_;
  Weight word_, pos_, type_;
  LayerNorm emb_ln_;
  LayerStack stack_;
  Linear pooler_;
  bool has_pooler_ = false;
};

}  // namespace clipkit::model
