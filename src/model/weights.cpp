#include "model/weights.h"

#include "core/error.h"

namespace clipkit::model {

Tensor WeightReader::get(const std::string& name, const Shape& expect) const {
  const std::string full = prefix_ + name;
  auto it = tensors_.find(full);
  if (it == tensors_.end()) fail("{}: checkpoint has no tensor \"{}\" (does config.json match the weights?)", source_, full);
  const Tensor& t = it->second;
  if (numel(t.shape) != numel(expect) || (t.shape != expect && !(expect.empty() && numel(t.shape) == 1)))
    fail("{}: tensor \"{}\" has shape {} but config.json implies {}", source_, full, shape_str(t.shape), shape_str(expect));
  return t.to_f32();
}

}  // namespace clipkit::model
