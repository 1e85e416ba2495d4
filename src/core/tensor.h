// A small tensor: dtype + shape + a pointer to contiguous row-major data, owning it or viewing
// memory kept alive by `holder` (e.g. a memory-mapped checkpoint).
#pragma once
#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clipkit {

enum class DType { F32, F16, BF16, F64, I64, I32, U8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);         // safetensors spelling: "F32", "BF16", ...
bool dtype_from_name(const std::string& s, DType* out);

using Shape = std::vector<int64_t>;
int64_t numel(const Shape& s);   // 0 as soon as a dimension is 0
// The bytes a shape of `elem_size`-byte elements needs, or false where a dimension is negative or
// the product of its nonzero dimensions passes 2^62 bytes: a file's shape is checked with this
// before any tensor is made of it, so no product of its dimensions (in any order) can overflow.
// A zero-size shape gets no pass for huge other dimensions (NumPy: "array is too big").
bool shape_bytes(const Shape& s, size_t elem_size, uint64_t* bytes);
std::string shape_str(const Shape& s);   // "[4, 3, 64, 64]"

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  void* data = nullptr;
  std::shared_ptr<void> holder;  // keeps `data` alive

  static Tensor empty(DType t, Shape s);   // owned, 64-byte aligned, uninitialized
  static Tensor zeros(DType t, Shape s);
  int64_t numel() const { return clipkit::numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  template <typename T> T* ptr() { return static_cast<T*>(data); }
  template <typename T> const T* ptr() const { return static_cast<const T*>(data); }
  // A float32 copy (converting F16/BF16/F64/ints); shares storage if already F32.
  Tensor to_f32() const;
  Tensor to_f64() const;
};

// bf16 <-> f32 with round-to-nearest-even (the rounding PyTorch and oneDNN use). constexpr: the CUDA
// kernels call these same functions (nvcc --expt-relaxed-constexpr).
constexpr uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
constexpr float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace clipkit
