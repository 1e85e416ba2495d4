// NumPy .npy files (format 1.0/2.0, little-endian, C order): float32/float64/int64/int32/uint8.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace clipkit {

Tensor read_npy(const std::string& path);                      // throws Error naming the file
// The header alone (dtype, shape, where the data starts), checked against the file's size.
struct NpyHeader {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};
NpyHeader read_npy_header(const std::string& path);
void write_npy(const std::string& path, const Tensor& t);      // atomic
std::string npy_bytes(const Tensor& t);                        // header + data, in memory

}  // namespace clipkit
