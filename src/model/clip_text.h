// CLIP text tower (HF CLIPTextTransformer).
//   ids [B, L] -> token_embedding + position_embedding[0..L) -> pre-LN layers (causal + padding
//   mask) -> final_layer_norm = last_hidden_state [B, L, C]; pooled = h[b, eos_position(b)] [B, C]
// EOS position as HF: eos_token_id == 2 (legacy configs) -> argmax(ids); else the first eos_token_id.
#pragma once
#include "model/tower.h"

namespace clipkit::model {

class ClipTextTower : public TextTower {
 public:
  void load(ParamSet& ps, const WeightReader& r, const TextConfig& c, const LoadPlan& plan) override;
  Tensor forward(Pass& p, const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, TowerSaved* s,
                 Tensor* hidden) const override;
  void backward(Pass& p, const Tensor& dpooled, TowerSaved& s) override;
  int64_t hidden_size() const override { return cfg_.hidden_size; }
  int64_t max_positions() const override { return cfg_.max_position_embeddings; }
  const char* name() const override { return "clip_text"; }

 private:
  TextConfig cfg_;
  Weight tok_, pos_;
  LayerStack stack_;
  LayerNorm final_ln_;
};

int64_t eos_position(const int32_t* ids, int64_t L, int eos_token_id);

// Throws Error when an id is outside [0, vocab_size).
void check_token_ids(const int32_t* ids, int64_t n, int vocab_size);

}  // namespace clipkit::model
