#include "io/npy.h"

#include <cstring>
#include <regex>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

const char* descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::I64: return "<i8";
    case DType::I32: return "<i4";
    case DType::U8: return "|u1";
    case DType::F16: return "<f2";
    case DType::BF16: break;
  }
  fail("npy: dtype {} has no NumPy equivalent", dtype_name(t));
}

}  // namespace

std::string npy_bytes(const Tensor& t) {
  std::string shape = "(";
  for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  shape += t.shape.size() == 1 ? ",)" : ")";  // NumPy's repr of the shape tuple
  std::string dict = "{'descr': '" + std::string(descr(t.dtype)) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  uint16_t hl = static_cast<uint16_t>(dict.size());
  out.append(reinterpret_cast<const char*>(&hl), 2);
  out += dict;
  out.append(static_cast<const char*>(t.data), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, npy_bytes(t)); }

Tensor read_npy(const std::string& path) {
  std::string s = read_file(path);
  if (s.size() < 10 || s.compare(0, 6, "\x93NUMPY") != 0) fail("{}: not a .npy file (bad magic)", path);
  uint8_t major = static_cast<uint8_t>(s[6]);
  size_t hl, off;
  if (major == 1) {
    hl = static_cast<uint8_t>(s[8]) | (static_cast<uint8_t>(s[9]) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (s.size() < 12) fail("{}: truncated .npy header", path);
    uint32_t v;
    std::memcpy(&v, s.data() + 8, 4);
    hl = v;
    off = 12;
  } else {
    fail("{}: unsupported .npy version {}", path, major);
  }
  if (off + hl > s.size()) fail("{}: truncated .npy header", path);
  std::string h = s.substr(off, hl);
  std::smatch m;
  if (!std::regex_search(h, m, std::regex("'descr'\\s*:\\s*'([^']*)'"))) fail("{}: .npy header has no descr", path);
  std::string d = m[1];
  Tensor t;
  if (d == "<f4") t.dtype = DType::F32;
  else if (d == "<f8") t.dtype = DType::F64;
  else if (d == "<i8") t.dtype = DType::I64;
  else if (d == "<i4") t.dtype = DType::I32;
  else if (d == "|u1" || d == "<u1") t.dtype = DType::U8;
  else if (d == "<f2") t.dtype = DType::F16;
  else fail("{}: unsupported .npy dtype '{}' (need little-endian f4/f8/f2/i8/i4/u1)", path, d);
  if (std::regex_search(h, m, std::regex("'fortran_order'\\s*:\\s*True"))) fail("{}: Fortran-order arrays are not supported", path);
  if (!std::regex_search(h, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)"))) fail("{}: .npy header has no shape", path);
  std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
    t.shape.push_back(std::stoll(it->str()));
  Tensor r = Tensor::empty(t.dtype, t.shape);
  size_t data_off = off + hl;
  if (s.size() - data_off != r.nbytes())
    fail("{}: data is {} bytes but shape {} needs {}", path, s.size() - data_off, shape_str(t.shape), r.nbytes());
  std::memcpy(r.data, s.data() + data_off, r.nbytes());
  return r;
}

}  // namespace clipkit
