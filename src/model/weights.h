// Reads named parameters out of a checkpoint as fp32, checking shapes, with errors that name the
// checkpoint, the tensor and both shapes.
#pragma once
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace clipkit::model {

class WeightReader {
 public:
  WeightReader(const Checkpoint& ckpt, std::string prefix) : ckpt_(ckpt), prefix_(std::move(prefix)) {}
  WeightReader sub(const std::string& p) const { return WeightReader(ckpt_, prefix_ + p); }
  bool has(const std::string& name) const { return ckpt_.has(prefix_ + name); }
  // fp32 copy of prefix+name; throws Error if missing or shaped differently from `expect`.
  std::vector<float> get(const std::string& name, const Shape& expect) const;
  const std::string& prefix() const { return prefix_; }

 private:
  const Checkpoint& ckpt_;
  std::string prefix_;
};

}  // namespace clipkit::model
