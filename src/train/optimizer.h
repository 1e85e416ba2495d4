// AdamW with torch.optim.AdamW semantics (HF Trainer's default "adamw_torch"), gradient-norm
// clipping as torch.nn.utils.clip_grad_norm_, and HF's learning-rate schedules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace clipkit::train {

// A trainable tensor: fp32 master weights and their gradient (both owned elsewhere).
struct Param {
  std::string name;  // HF state-dict key
  float* w = nullptr;
  float* g = nullptr;
  int64_t n = 0;
  bool decay = true;  // HF get_decay_parameter_names: no decay for biases and LayerNorm weights
};

// HF's rule: parameters inside LayerNorm modules or whose name matches bias/layernorm/norm get no decay.
bool hf_weight_decay(const std::string& name);

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<Param> params, AdamWConfig c);
  // One update at learning rate lr, with g = float(g * grad_scale) (the clip coefficient applied in
  // the same pass, exactly as clip_grad_norm would have scaled g; 1 = as is):
  //   p *= 1 - lr*wd ; m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2
  //   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
  void step(double lr, double grad_scale = 1.0);
  int64_t steps() const { return t_; }
  const std::vector<Param>& params() const { return params_; }
  // optimizer state for checkpoints: exp_avg / exp_avg_sq per parameter, and the step count
  std::vector<float>& exp_avg(size_t i) { return m_[i]; }
  std::vector<float>& exp_avg_sq(size_t i) { return v_[i]; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  std::vector<Param> params_;
  AdamWConfig c_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
};

// total = sqrt(sum g^2) over all params, accumulated in double in a fixed order (independent of
// the thread count): the pre-clip norm the HF Trainer logs.
double grad_norm(const std::vector<Param>& params);
// torch's clip coefficient min(1, max_norm / (total + 1e-6)); 1 when max_norm <= 0 (no clipping).
double clip_coefficient(double total, double max_norm);
// grad_norm, then g *= clip_coefficient in place. Returns total. (Trainers pass the coefficient to
// AdamW::step instead, which saves a pass over the gradients.)
double clip_grad_norm(const std::vector<Param>& params, double max_norm);

enum class Schedule { Linear, Cosine, Constant };
Schedule schedule_from_name(const std::string& s);  // linear | cosine | constant
// The LR multiplier for 0-based optimizer step k of N with W warmup steps (HF get_scheduler).
double lr_factor(Schedule s, int64_t k, int64_t N, int64_t W);

}  // namespace clipkit::train
