#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace clipkit::train {

AdamW::AdamW(backend::Backend& be, std::vector<model::Param*> params, AdamWConfig c)
    : be_(be), params_(std::move(params)), c_(c) {
  for (model::Param* p : params_) {
    backend::OptimizerSlot s{p->value, p->grad, be_.alloc(DType::F32, p->value.shape()),
                             be_.alloc(DType::F32, p->value.shape()), p->decay};
    be_.zero(s.m);
    be_.zero(s.v);
    slots_.push_back(std::move(s));
  }
}

void AdamW::step(double lr, double grad_scale) {
  be_.adamw(slots_, {lr, c_.beta1, c_.beta2, c_.eps, c_.weight_decay, grad_scale, ++t_});
  for (model::Param* p : params_) ++p->buffer->version;
}

double AdamW::grad_norm() const {
  std::vector<backend::Tensor> g;
  for (model::Param* p : params_) g.push_back(p->grad);
  return be_.grad_norm(g);
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i)
    for (auto [prefix, t] : {std::pair{"exp_avg.", &slots_[i].m}, {"exp_avg_sq.", &slots_[i].v}}) {
      Tensor h = Tensor::empty(DType::F32, {t->numel()});
      be_.download(*t, h.data);
      out.emplace_back(prefix + params_[i]->name, h);
    }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors, int64_t steps, const std::string& source) {
  for (size_t i = 0; i < params_.size(); ++i)
    for (auto [prefix, t] : {std::pair{"exp_avg.", &slots_[i].m}, {"exp_avg_sq.", &slots_[i].v}}) {
      auto it = tensors.find(prefix + params_[i]->name);
      if (it == tensors.end())
        fail("{}: optimizer state has no \"{}\" (was it made with other --freeze flags?)", source, params_[i]->name);
      Tensor f = it->second.to_f32();
      if (f.numel() != t->numel()) fail("{}: optimizer state of \"{}\" has the wrong size", source, params_[i]->name);
      be_.upload(f.data, *t);
    }
  t_ = steps;
}

double clip_coefficient(double total, double max_norm) {
  return max_norm > 0 ? std::min(1.0, max_norm / (total + 1e-6)) : 1.0;
}

Schedule schedule_from_name(const std::string& s) {
  if (s == "linear") return Schedule::Linear;
  if (s == "cosine") return Schedule::Cosine;
  if (s == "constant" || s == "constant_with_warmup") return Schedule::Constant;
  fail("unknown --lr-scheduler \"{}\" (linear, cosine, constant)", s);
}

double lr_factor(Schedule s, int64_t k, int64_t N, int64_t W) {
  if (k < W) return static_cast<double>(k) / std::max<int64_t>(1, W);
  switch (s) {
    case Schedule::Linear:
      return std::max(0.0, static_cast<double>(N - k) / std::max<int64_t>(1, N - W));
    case Schedule::Cosine: {
      const double progress = static_cast<double>(k - W) / std::max<int64_t>(1, N - W);
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    }
    case Schedule::Constant:
      return 1.0;
  }
  return 1.0;
}

}  // namespace clipkit::train
