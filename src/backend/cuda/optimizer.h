// Multi-tensor AdamW and the gradient norm on the device, with the CPU's semantics
// (src/train/optimizer.h): torch.optim.AdamW with the clip coefficient folded into the update.
// Every parameter is cut into chunks of kChunk elements, and one launch updates them all.
//   step: the same IEEE float operations in the same order as train::AdamW::step (no contraction,
//     correctly rounded division and square root): bit-identical weights and moments.
//   grad_norm: sqrt(sum g^2) in double, each chunk's partial sum in a fixed order and the partials
//     summed in chunk order: deterministic (the CPU's sum differs by rounding only).
#pragma once
#include <cstdint>
#include <vector>

#include "backend/cuda/context.h"
#include "backend/cuda/memory.h"
#include "train/optimizer.h"

namespace clipkit::cuda {

class AdamW {
 public:
  static constexpr int64_t kChunk = 1 << 16;

  // params: device pointers w and g (train::Param, n elements each); the moments are allocated
  // and zeroed here, on ctx's device.
  AdamW(std::vector<train::Param> params, train::AdamWConfig c, Context& ctx);

  // train::AdamW::step(lr, grad_scale): g = float(g * grad_scale) (written back when != 1), then the update.
  void step(double lr, double grad_scale, Context& ctx);
  // The same with the clip coefficient min(1, max_norm / (total + 1e-6)) (1 when max_norm <= 0)
  // computed on the device from *total_norm (grad_norm's output): no round trip to the host.
  void step_clipped(double lr, const double* total_norm, double max_norm, Context& ctx);

  // total = sqrt(sum of every gradient squared) into *total (device)
  void grad_norm(double* total, Context& ctx) const;

  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  const std::vector<train::Param>& params() const { return params_; }
  // device pointers to parameter i's exp_avg / exp_avg_sq (n floats each), for checkpoints
  float* exp_avg(size_t i) const { return m_.as<float>() + offsets_[i]; }
  float* exp_avg_sq(size_t i) const { return v_.as<float>() + offsets_[i]; }

  // the chunk table: (parameter index, first element, element count) per chunk, in order
  struct Chunk {
    int32_t param = 0;
    int64_t begin = 0, count = 0;
  };
  static std::vector<Chunk> chunks_of(const std::vector<train::Param>& params, int64_t chunk);

 private:
  void launch(double lr, double grad_scale, const double* total_norm, double max_norm, Context& ctx);
  std::vector<train::Param> params_;
  train::AdamWConfig c_;
  std::vector<int64_t> offsets_;
  int64_t n_chunks_ = 0;
  DeviceBuffer m_, v_, table_, partial_;
  int64_t t_ = 0;
};

}  // namespace clipkit::cuda
