// What the towers share: their host-side outputs, what a training forward keeps for the backward,
// and the text tower interface (CLIP text, RoBERTa).
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "model/blocks.h"
#include "model/config.h"

namespace clipkit::model {

struct TowerOutput {
  clipkit::Tensor last_hidden_state;  // [B, L, C] (only when asked for)
  clipkit::Tensor pooled;             // [B, C]
};

// What a tower's training forward keeps for its backward.
struct TowerSaved {
  Indices indices;               // ids, positions and row maps the pass uploaded
  Tensor ids, positions, extra;  // the embedding lookups' index tensors (extra: token types / class-token rows)
  Tensor patch_x, patch_rows;    // vision: the patch embedding's input, the patch rows of the sequence
  Tensor embed_in, embed_stats;  // the embedding layer norm's input and statistics
  StackSaved stack;
  Tensor top_in, top_stats;      // the last layer norm's input rows and statistics
  Tensor pooler_x, pooler_pre;   // RoBERTa's pooler
};

class TextTower {
 public:
  virtual ~TextTower() = default;
  virtual void load(ParamSet& ps, const WeightReader& r, const TextConfig& c, const LoadPlan& plan) = 0;
  // ids, mask (host) [B, L] (mask 1 = real token) -> pooled [B, C]; hidden (optional): the last
  // hidden states [B*L, C]. s: a training pass's saved state.
  virtual Tensor forward(Pass& p, const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, TowerSaved* s,
                         Tensor* hidden) const = 0;
  virtual void backward(Pass& p, const Tensor& dpooled, TowerSaved& s) = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t max_positions() const = 0;
  virtual const char* name() const = 0;
};

}  // namespace clipkit::model
