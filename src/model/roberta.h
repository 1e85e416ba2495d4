// RoBERTa text tower (HF RobertaModel with pooler).
//   position_ids = padding_idx + cumsum(ids != pad) for real tokens, padding_idx for pads
//   x = LN(word[ids] + position[position_ids] + token_type[0]) -> post-LN layers (padding mask)
//   last_hidden_state [B, L, C]; pooled = tanh(pooler.dense(h[:, 0]))   [B, C]
#pragma once
#include <vector>

#include "model/blocks.h"
#include "model/config.h"
#include "model/tower.h"

namespace clipkit::model {

class RobertaTextTower : public TextTower {
 public:
  void load(const WeightReader& w, const TextConfig& c, ops::Precision p);
  TowerOutput forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const override;
  int64_t hidden_size() const override { return cfg_.hidden_size; }
  int64_t max_positions() const override { return cfg_.max_position_embeddings - cfg_.pad_token_id - 1; }
  int64_t param_count() const override;
  const char* name() const override { return "roberta"; }

 private:
  TextConfig cfg_;
  std::vector<float> word_, position_, token_type_;
  LayerNorm emb_ln_;
  std::vector<EncoderLayer> layers_;
  ops::Linear pooler_;
  bool has_pooler_ = false;
};

}  // namespace clipkit::model
