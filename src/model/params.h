// The model's parameters as it registers them: each tensor with its HF state-dict key, fp32 master
// on the backend, gradient (when it trains), place in the model and weight-decay group. The
// trainer, the optimizer and checkpoints work from this list, never from name patterns.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/weights.h"

namespace clipkit::model {

enum class Part : uint8_t { Vision, Text, Head };  // Head: projections and logit_scale
constexpr int kTopDepth = 1 << 20;                // depth of a tower's projection

// Shared by the tensors of one buffer (q/k/v are row blocks of one fused weight): the version of
// its values (bumped on every change, so backends remake their prepared copies), and the deferred
// zero_grad of a gradient that one backward call writes in full (linear layers): zero_grad marks
// a Written gradient Stale, the next backward overwrites it (no clearing pass, no read of the old
// values), settle_grads clears what no backward reached.
struct ParamBuffer {
  enum class Grad : uint8_t { Zero, Written, Stale };
  uint64_t version = 0;
  Grad grad = Grad::Zero;
  bool lazy = false;
};

struct Param {
  std::string name;      // HF state-dict key
  Shape shape;           // as stored in the checkpoint
  backend::Tensor value; // fp32 master
  backend::Tensor grad;  // undefined when frozen
  Part part = Part::Head;
  int depth = 0;         // bottom-up: -1 embeddings, 0..L-1 encoder layers, L.. the tower's top
  bool decay = true;     // HF's weight-decay group (no decay for biases and LayerNorm weights)
  ParamBuffer* buffer = nullptr;
  bool trainable() const { return grad.defined(); }
};

// A master and its gradient (undefined when frozen), as the blocks hold them.
struct Weight {
  backend::Tensor value, grad;
  ParamBuffer* buffer = nullptr;
};

// What decides where a tower's tensors go: trained or frozen, prepared how.
struct LoadPlan {
  Part part = Part::Head;
  bool train = false;         // gradients for depth >= freeze_depth
  int freeze_depth = -1;      // -1: every depth trains
  backend::WeightUse use = backend::WeightUse::Inference;
  backend::Precision precision = backend::Precision::F32;
  // Weights that get no gradient may be borrowed from the checkpoint (Backend::borrow) rather
  // than copied: for models loaded only to run (nothing ever writes their weights).
  bool borrow = false;
};

// Reads HF tensors into backend masters and registers them.
class ParamSet {
 public:
  explicit ParamSet(backend::Backend& be) : be_(be) {}
  backend::Backend& backend() const { return be_; }
  std::deque<Param>& all() { return params_; }
  const std::deque<Param>& all() const { return params_; }

  // A buffer state for tensors that share it; lazy: one backward call writes their gradients in full.
  ParamBuffer* new_buffer(bool lazy);
  // One tensor, r.prefix() + name (buffer: null = a fresh one of its own). decay: see Param.
  Weight add(const WeightReader& r, const std::string& name, const Shape& shape, const LoadPlan& p, int depth,
             bool decay, ParamBuffer* buffer = nullptr);
  // Several tensors of one shape stacked as row blocks of one master (fused q/k/v).
  Weight add_fused(const WeightReader& r, const std::vector<std::string>& names, const Shape& each,
                   const LoadPlan& p, int depth, bool decay, ParamBuffer* buffer);
  // Marks the gradients stale / clears them (see ParamBuffer), settles the stale ones.
  void zero_grad();
  void settle_grads();

 private:
  backend::Backend& be_;
  std::deque<Param> params_;
  std::deque<ParamBuffer> buffers_;
};

}  // namespace clipkit::model
