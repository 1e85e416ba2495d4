// One pass through the model: the backend and arena its tensors come from, and what it is for.
// An inference pass saves nothing; a training pass (save) keeps in the arena what the backward
// pass needs, and applies dropout with masks seeded per step.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "backend/backend.h"

namespace clipkit::model {

struct Pass {
  backend::Backend& be;
  backend::Arena& arena;
  backend::Precision precision = backend::Precision::F32;
  bool save = false;             // training: keep what backward needs
  float hidden_dropout = 0;      // RoBERTa's hidden_dropout_prob (0 = off)
  float attention_dropout = 0;   // the tower's attention-probability dropout (0 = off)
  uint64_t seed = 0;             // dropout masks are a hash of (seed, site, element)
  bool checkpointing = false;    // keep only layer inputs; recompute layers in backward

  backend::Tensor alloc(Shape s) { return arena.alloc(DType::F32, std::move(s)); }
  // An activation whose only consumers are matmuls (bf16 in a bf16 training pass).
  backend::Tensor alloc_operand(Shape s) { return arena.alloc(be.operand_dtype(precision, save), std::move(s)); }
};

// Host index arrays a pass uploads (token ids, positions, row maps): kept alive, with their device
// tensors, as long as the pass that reads them (backends may read host memory in place).
class Indices {
 public:
  const backend::Tensor& add(Pass& p, std::vector<int32_t> v) {
    host_.push_back(std::move(v));
    dev_.push_back(p.be.input(p.arena, host_.back().data(), DType::I32, {static_cast<int64_t>(host_.back().size())}));
    return dev_.back();
  }
  void clear() {
    host_.clear();
    dev_.clear();
  }

 private:
  std::deque<std::vector<int32_t>> host_;
  std::deque<backend::Tensor> dev_;
};

}  // namespace clipkit::model
