// NumPy .npy files (format 1.0/2.0/3.0, little-endian, C order): float32/float64/float16/int64/
// int32/uint8. Headers are checked before anything is allocated: the shape must be a tuple of
// non-negative integers whose byte size (overflow-checked) matches the data the file holds.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace clipkit {

Tensor read_npy(const std::string& path);                      // throws Error naming the file
// The header alone (dtype, shape, where the data starts), checked against the file's size; reads
// only the header.
struct NpyHeader {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};
NpyHeader read_npy_header(const std::string& path);
// The same from bytes in memory; `name` names them in errors.
Tensor parse_npy(std::string_view bytes, const std::string& name);
void write_npy(const std::string& path, const Tensor& t);      // atomic
std::string npy_bytes(const Tensor& t);                        // header + data, in memory

}  // namespace clipkit
