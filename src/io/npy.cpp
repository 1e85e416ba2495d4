#include "io/npy.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

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

namespace {

// The header of a .npy file held in `s` (at least its first bytes): dtype, shape, data offset.
NpyHeader parse_header(const std::string& s, const std::string& path) {
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
  const std::string h = s.substr(off, hl);
  // the header is a Python dict literal; read the three keys NumPy writes
  auto value_after = [&](const char* key) -> std::string {
    size_t k = h.find(std::string("'") + key + "'");
    if (k == std::string::npos) fail("{}: .npy header has no '{}'", path, key);
    size_t c = h.find(':', k);
    if (c == std::string::npos) fail("{}: malformed .npy header", path);
    size_t v = h.find_first_not_of(" ", c + 1);
    if (v == std::string::npos) fail("{}: malformed .npy header", path);
    return h.substr(v);
  };
  std::string d = value_after("descr");
  if (d.size() < 2 || d[0] != '\'' || d.find('\'', 1) == std::string::npos) fail("{}: malformed descr in .npy header", path);
  d = d.substr(1, d.find('\'', 1) - 1);
  NpyHeader r;
  if (d == "<f4") r.dtype = DType::F32;
  else if (d == "<f8") r.dtype = DType::F64;
  else if (d == "<i8") r.dtype = DType::I64;
  else if (d == "<i4") r.dtype = DType::I32;
  else if (d == "|u1" || d == "<u1") r.dtype = DType::U8;
  else if (d == "<f2") r.dtype = DType::F16;
  else fail("{}: unsupported .npy dtype '{}' (need little-endian f4/f8/f2/i8/i4/u1)", path, d);
  if (value_after("fortran_order").rfind("True", 0) == 0) fail("{}: Fortran-order arrays are not supported", path);
  std::string sh = value_after("shape");
  if (sh.empty() || sh[0] != '(' || sh.find(')') == std::string::npos) fail("{}: malformed shape in .npy header", path);
  sh = sh.substr(1, sh.find(')') - 1);
  for (size_t i = 0; i < sh.size();) {
    if (!std::isdigit(static_cast<unsigned char>(sh[i]))) { ++i; continue; }
    size_t j = i;
    while (j < sh.size() && std::isdigit(static_cast<unsigned char>(sh[j]))) ++j;
    if (j - i > 15) fail("{}: malformed shape in .npy header", path);
    r.shape.push_back(std::stoll(sh.substr(i, j - i)));
    i = j;
  }
  r.data_offset = off + hl;
  return r;
}

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::string s(12, '\0');
  s.resize(std::fread(s.data(), 1, s.size(), f));
  if (s.size() >= 12) {  // read up to the end of the header
    uint32_t v2 = 0;
    std::memcpy(&v2, s.data() + 8, 4);
    size_t hl = static_cast<uint8_t>(s[6]) == 1 ? 10 + (static_cast<uint8_t>(s[8]) | (static_cast<uint8_t>(s[9]) << 8))
                                                : 12 + size_t{v2};
    hl = std::min<size_t>(hl, 1 << 20);
    const size_t have = s.size();
    s.resize(hl);
    if (hl > have) s.resize(have + std::fread(s.data() + have, 1, hl - have, f));
  }
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fclose(f);
  NpyHeader h = parse_header(s, path);
  int64_t n = 1;
  for (auto d : h.shape) n *= d;
  if (static_cast<uint64_t>(size) - h.data_offset != static_cast<uint64_t>(n) * dtype_size(h.dtype))
    fail("{}: data is {} bytes but shape {} needs {}", path, static_cast<uint64_t>(size) - h.data_offset,
         shape_str(h.shape), static_cast<uint64_t>(n) * dtype_size(h.dtype));
  return h;
}

Tensor read_npy(const std::string& path) {
  std::string s = read_file(path);
  NpyHeader h = parse_header(s, path);
  Tensor r = Tensor::empty(h.dtype, h.shape);
  const size_t data_off = h.data_offset;
  if (s.size() - data_off != r.nbytes())
    fail("{}: data is {} bytes but shape {} needs {}", path, s.size() - data_off, shape_str(h.shape), r.nbytes());
  std::memcpy(r.data, s.data() + data_off, r.nbytes());
  return r;
}

}  // namespace clipkit
