// bf16 round trips for the op tests of the bf16 training path.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "backend/cpu/gemm.h"

namespace clipkit::test {

inline std::vector<uint16_t> bf16(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  backend::cpu::to_bf16(v.data(), b.data(), static_cast<int64_t>(v.size()));
  return b;
}

inline std::vector<float> from_bf16(const std::vector<uint16_t>& b) {
  std::vector<float> v(b.size());
  for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(b[i]);
  return v;
}

}  // namespace clipkit::test
