// AdamW with torch.optim.AdamW semantics (HF Trainer's default "adamw_torch") over the parameters
// a model registers, gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (its coefficient
// folded into the update), and HF's learning-rate schedules.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/params.h"

namespace clipkit::train {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(backend::Backend& be, std::vector<model::Param*> params, AdamWConfig c);
  // One update at learning rate lr, the gradients scaled by grad_scale in the same pass (the clip
  // coefficient; 1 = as they are). Decay per Param::decay. Bumps each parameter's version.
  void step(double lr, double grad_scale = 1.0);
  // sqrt(sum g^2) over every parameter: the pre-clip norm the HF Trainer logs.
  double grad_norm() const;
  const std::vector<model::Param*>& params() const { return params_; }
  int64_t steps() const { return t_; }
  // The moments as host tensors "exp_avg.<name>", "exp_avg_sq.<name>", and loading them back
  // (throws naming `source` when one is missing).
  std::vector<std::pair<std::string, Tensor>> state() const;
  void load_state(const std::map<std::string, Tensor>& tensors, int64_t steps, const std::string& source);

 private:
  backend::Backend& be_;
  std::vector<model::Param*> params_;
  std::vector<backend::OptimizerSlot> slots_;
  AdamWConfig c_;
  int64_t t_ = 0;
};

// torch's clip coefficient min(1, max_norm / (total + 1e-6)); 1 when max_norm <= 0 (no clipping).
double clip_coefficient(double total, double max_norm);

enum class Schedule { Linear, Cosine, Constant };
Schedule schedule_from_name(const std::string& s);  // linear | cosine | constant
// The LR multiplier for 0-based optimizer step k of N with W warmup steps (HF get_scheduler).
double lr_factor(Schedule s, int64_t k, int64_t N, int64_t W);

}  // namespace clipkit::train
