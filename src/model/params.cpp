#include "model/params.h"

#include "core/error.h"

namespace clipkit::model {

ParamBuffer* ParamSet::new_buffer(bool lazy) {
  buffers_.emplace_back();
  buffers_.back().lazy = lazy;
  return &buffers_.back();
}

Weight ParamSet::add(const WeightReader& r, const std::string& name, const Shape& shape, const LoadPlan& p, int depth,
                     bool decay, ParamBuffer* buffer) {
  return add_fused(r, {name}, shape, p, depth, decay, buffer);
}

Weight ParamSet::add_fused(const WeightReader& r, const std::vector<std::string>& names, const Shape& each,
                           const LoadPlan& p, int depth, bool decay, ParamBuffer* buffer) {
  if (!buffer) buffer = new_buffer(false);
  const int64_t n = static_cast<int64_t>(names.size()), rows = each.empty() ? 1 : each[0];
  Shape full = each.empty() ? Shape{n} : each;
  if (!each.empty()) full[0] *= n;
  const bool train = p.train && depth >= p.freeze_depth;
  // a lone tensor without gradient may be viewed in place (host-memory backends): no copy at all
  const bool borrow = p.borrow && !train && n == 1;
  Weight w{borrow ? be_.borrow(r.get(names[0], each), full) : be_.alloc(DType::F32, full),
           train ? be_.alloc(DType::F32, full) : backend::Tensor(), buffer};
  if (train) be_.zero(w.grad);
  for (int64_t i = 0; i < n; ++i) {
    Param q;
    q.name = r.prefix() + names[i];
    q.shape = each;
    q.value = n == 1 ? w.value : w.value.slice(i * rows, (i + 1) * rows);
    if (train) q.grad = n == 1 ? w.grad : w.grad.slice(i * rows, (i + 1) * rows);
    if (!borrow) be_.upload(r.get(names[i], each).data, q.value);
    q.part = p.part;
    q.depth = depth;
    q.decay = decay;
    q.buffer = buffer;
    params_.push_back(std::move(q));
  }
  return w;
}

void ParamSet::zero_grad() {
  for (auto& p : params_) {
    if (!p.trainable()) continue;
    if (!p.buffer->lazy) be_.zero(p.grad);
    else if (p.buffer->grad == ParamBuffer::Grad::Written) p.buffer->grad = ParamBuffer::Grad::Stale;
  }
}

void ParamSet::settle_grads() {
  // two passes: the tensors of one buffer share its state
  for (auto& p : params_)
    if (p.trainable() && p.buffer->grad == ParamBuffer::Grad::Stale) be_.zero(p.grad);
  for (auto& p : params_)
    if (p.trainable() && p.buffer->grad == ParamBuffer::Grad::Stale) p.buffer->grad = ParamBuffer::Grad::Zero;
}

}  // namespace clipkit::model
