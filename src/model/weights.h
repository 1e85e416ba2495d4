// Reads named parameters out of a checkpoint's tensors as fp32, checking shapes, with errors that
// name the checkpoint, the tensor and both shapes.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace clipkit::model {

class WeightReader {
 public:
  // tensors: by full name (Checkpoint::tensors()); source names them in errors (the folder).
  WeightReader(const std::map<std::string, Tensor>& tensors, std::string source, std::string prefix = "")
      : tensors_(tensors), source_(std::move(source)), prefix_(std::move(prefix)) {}
  WeightReader sub(const std::string& p) const { return WeightReader(tensors_, source_, prefix_ + p); }
  bool has(const std::string& name) const { return tensors_.count(prefix_ + name) != 0; }
  // prefix+name as fp32 (a view when stored as fp32); throws Error if missing or shaped differently.
  Tensor get(const std::string& name, const Shape& expect) const;
  const std::string& prefix() const { return prefix_; }
  const std::string& source() const { return source_; }

 private:
  const std::map<std::string, Tensor>& tensors_;
  std::string source_, prefix_;
};

}  // namespace clipkit::model
