// CLIP text tower (HF CLIPTextTransformer).
//   ids [B, L] -> token_embedding + position_embedding[0..L) -> pre-LN layers (causal + padding
//   mask) -> final_layer_norm = last_hidden_state [B, L, C]; pooled = h[b, eos_position(b)] [B, C]
// EOS position as HF: eos_token_id == 2 (legacy configs) -> argmax(ids); else the first eos_token_id.
#pragma once
#include <vector>

#include "model/blocks.h"
#include "model/config.h"
#include "model/tower.h"

namespace clipkit::model {

class ClipTextTower : public TextTower {
 public:
  void load(const WeightReader& w, const TextConfig& c, ops::Precision p);
  TowerOutput forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const override;
  int64_t hidden_size() const override { return cfg_.hidden_size; }
  int64_t max_positions() const override { return cfg_.max_position_embeddings; }
  int64_t param_count() const override;
  const char* name() const override { return "clip_text"; }

 private:
  TextConfig cfg_;
  std::vector<float> token_embedding_, position_embedding_;
  std::vector<EncoderLayer> layers_;
  LayerNorm final_ln_;
};

int64_t eos_position(const int32_t* ids, int64_t L, int eos_token_id);

}  // namespace clipkit::model
