// What every tower returns, and the text tower interface (CLIP text, RoBERTa).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace clipkit::model {

struct TowerOutput {
  Tensor last_hidden_state;  // [B, L, C] (only when asked for)
  Tensor pooled;             // [B, C]
};

class TextTower {
 public:
  virtual ~TextTower() = default;
  // ids, mask: [B, L] int32 (mask 1 = real token). Returns pooled [B, C] (+ hidden states).
  virtual TowerOutput forward(const int32_t* ids, const int32_t* mask, int64_t B, int64_t L, bool want_hidden) const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t max_positions() const = 0;
  virtual int64_t param_count() const = 0;
  virtual const char* name() const = 0;
};

}  // namespace clipkit::model
