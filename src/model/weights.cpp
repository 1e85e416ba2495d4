#include "model/weights.h"

#include <cstring>

#include "core/error.h"

namespace clipkit::model {

std::vector<float> WeightReader::get(const std::string& name, const Shape& expect) const {
  const std::string full = prefix_ + name;
  if (!ckpt_.has(full)) fail("{}: checkpoint has no tensor \"{}\" (does config.json match the weights?)", ckpt_.dir(), full);
  const Tensor& t = ckpt_.get(full);
  if (numel(t.shape) != numel(expect) || (t.shape != expect && !(expect.empty() && numel(t.shape) == 1)))
    fail("{}: tensor \"{}\" has shape {} but config.json implies {}", ckpt_.dir(), full, shape_str(t.shape), shape_str(expect));
  Tensor f = t.to_f32();
  std::vector<float> out(static_cast<size_t>(f.numel()));
  std::memcpy(out.data(), f.data, out.size() * sizeof(float));
  return out;
}

}  // namespace clipkit::model
