// NumPy .npy files (format 1.0/2.0, little-endian, C order): float32/float64/int64/int32/uint8.
#pragma once
#include <string>

#include "core/tensor.h"

namespace clipkit {

Tensor read_npy(const std::string& path);                      // throws Error naming the file
void write_npy(const std::string& path, const Tensor& t);      // atomic
std::string npy_bytes(const Tensor& t);                        // header + data, in memory

}  // namespace clipkit
