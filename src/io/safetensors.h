// safetensors: memory-mapped reading with full header validation, sharded checkpoints, and an
// atomic writer. Format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, data.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace clipkit {

// One .safetensors file, memory-mapped. Tensors are views into the mapping (kept alive by
// Tensor::holder, so they outlive this object safely).
class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);  // validates; throws Error naming the file
  // The same validation of a file's bytes held in memory; `name` names them in errors.
  static SafeTensorsFile from_bytes(std::string bytes, const std::string& name);
  const std::string& path() const { return path_; }
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const Tensor& get(const std::string& name) const;  // throws Error if missing

 private:
  SafeTensorsFile() = default;
  void parse(const uint8_t* base, size_t size, const std::shared_ptr<void>& holder);
  std::string path_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: model.safetensors, or model.safetensors.index.json + shards.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const Tensor& get(const std::string& name) const;  // throws Error naming the checkpoint
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::string& dir() const { return dir_; }
  // Throws Error naming the first tensor holding NaN or infinity (weights like that give NaN
  // embeddings without any other sign). `which` (when given) picks the tensors to check by name.
  void require_finite(const std::function<bool(const std::string&)>& which = {}) const;

 private:
  std::string dir_;
  std::map<std::string, Tensor> tensors_;
};

// Writes tensors (any dtype) + string metadata atomically.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace clipkit
