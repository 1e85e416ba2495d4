#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace clipkit {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

bool dtype_from_name(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> names[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"U8", DType::U8}};
  for (auto& [n, t] : names)
    if (s == n) { *out = t; return true; }
  return false;
}

int64_t numel(const Shape& s) {
  for (auto d : s)
    if (d == 0) return 0;
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

bool shape_bytes(const Shape& s, size_t elem_size, uint64_t* bytes) {
  uint64_t nonzero = elem_size;
  bool empty = false;
  for (auto d : s) {
    if (d < 0) return false;
    if (d == 0) empty = true;
    else if (__builtin_mul_overflow(nonzero, static_cast<uint64_t>(d), &nonzero) || nonzero > (uint64_t{1} << 62))
      return false;
  }
  *bytes = empty ? 0 : nonzero;
  return true;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

Tensor Tensor::empty(DType t, Shape s) {
  Tensor r;
  r.dtype = t;
  r.shape = std::move(s);
  size_t bytes = (r.nbytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p) fail("out of memory allocating a tensor of {} bytes", bytes);
  r.holder = std::shared_ptr<void>(p, std::free);
  r.data = p;
  return r;
}

Tensor Tensor::zeros(DType t, Shape s) {
  Tensor r = empty(t, std::move(s));
  std::memset(r.data, 0, r.nbytes());
  return r;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: renormalize
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; --exp; }
      u = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((u >> 23) & 0xff) - 127 + 15;
  uint32_t man = u & 0x7fffffu;
  if (((u >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    man |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;
  return static_cast<uint16_t>(half);
}

template <typename Out>
static Tensor convert(const Tensor& in, DType out_t) {
  Tensor r = Tensor::empty(out_t, in.shape);
  Out* o = r.ptr<Out>();
  int64_t n = in.numel();
  for (int64_t i = 0; i < n; ++i) {
    double v = 0;
    switch (in.dtype) {
      case DType::F32: v = in.ptr<float>()[i]; break;
      case DType::F64: v = in.ptr<double>()[i]; break;
      case DType::F16: v = f16_to_f32(in.ptr<uint16_t>()[i]); break;
      case DType::BF16: v = bf16_to_f32(in.ptr<uint16_t>()[i]); break;
      case DType::I64: v = static_cast<double>(in.ptr<int64_t>()[i]); break;
      case DType::I32: v = in.ptr<int32_t>()[i]; break;
      case DType::U8: v = in.ptr<uint8_t>()[i]; break;
    }
    o[i] = static_cast<Out>(v);
  }
  return r;
}

Tensor Tensor::to_f32() const { return dtype == DType::F32 ? *this : convert<float>(*this, DType::F32); }
Tensor Tensor::to_f64() const { return dtype == DType::F64 ? *this : convert<double>(*this, DType::F64); }

}  // namespace clipkit
