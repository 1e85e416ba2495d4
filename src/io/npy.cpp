#include "io/npy.h"

#include <sys/stat.h>

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

struct Header {
  DType dtype = DType::F32;
  Shape shape;
  size_t data_offset = 0;  // where the data starts
  size_t data_bytes = 0;   // what the shape needs
};

constexpr size_t kMaxHeader = 1 << 16;  // NumPy writes at most a few hundred bytes
constexpr size_t kMaxDims = 64;

// The header at the start of `b` (which holds at least the whole header when the file does).
Header parse_header(std::string_view b, const std::string& name) {
  if (b.size() < 10 || b.substr(0, 6) != "\x93NUMPY") fail("{}: not a .npy file (bad magic)", name);
  const uint8_t major = static_cast<uint8_t>(b[6]);
  size_t hl, off;
  if (major == 1) {
    hl = static_cast<uint8_t>(b[8]) | (static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) fail("{}: truncated .npy header", name);
    uint32_t v;
    std::memcpy(&v, b.data() + 8, 4);
    hl = v;
    off = 12;
  } else {
    fail("{}: unsupported .npy version {}", name, major);
  }
  if (hl > kMaxHeader) fail("{}: .npy header of {} bytes is longer than the {} bytes allowed", name, hl, kMaxHeader);
  if (hl > b.size() - off) fail("{}: truncated .npy header", name);
  const std::string_view h = b.substr(off, hl);
  // the header is a Python dict literal; read the three keys NumPy writes
  auto value_after = [&](const char* key) -> std::string_view {
    size_t k = h.find(std::string("'") + key + "'");
    if (k == std::string_view::npos) fail("{}: .npy header has no '{}'", name, key);
    size_t c = h.find(':', k);
    if (c == std::string_view::npos) fail("{}: malformed .npy header", name);
    size_t v = h.find_first_not_of(' ', c + 1);
    if (v == std::string_view::npos) fail("{}: malformed .npy header", name);
    return h.substr(v);
  };
  Header r;
  std::string_view d = value_after("descr");
  if (d.size() < 2 || d[0] != '\'' || d.find('\'', 1) == std::string_view::npos)
    fail("{}: malformed descr in .npy header", name);
  d = d.substr(1, d.find('\'', 1) - 1);
  if (d == "<f4") r.dtype = DType::F32;
  else if (d == "<f8") r.dtype = DType::F64;
  else if (d == "<i8") r.dtype = DType::I64;
  else if (d == "<i4") r.dtype = DType::I32;
  else if (d == "|u1" || d == "<u1") r.dtype = DType::U8;
  else if (d == "<f2") r.dtype = DType::F16;
  else fail("{}: unsupported .npy dtype '{}' (need little-endian f4/f8/f2/i8/i4/u1)", name, d);
  const std::string_view fo = value_after("fortran_order");
  if (fo.starts_with("True")) fail("{}: Fortran-order arrays are not supported", name);
  if (!fo.starts_with("False")) fail("{}: malformed fortran_order in .npy header", name);
  // shape: "(" non-negative integers separated by commas (a trailing one allowed; Python 2 wrote 3L) ")"
  std::string_view sh = value_after("shape");
  const size_t close = sh.find(')');
  if (sh.empty() || sh[0] != '(' || close == std::string_view::npos) fail("{}: malformed shape in .npy header", name);
  sh = sh.substr(1, close - 1);
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < sh.size() && sh[i] == ' ') ++i;
  };
  while (true) {
    skip_spaces();
    if (i == sh.size()) break;
    if (!std::isdigit(static_cast<unsigned char>(sh[i])))
      fail("{}: the shape ({}) must hold non-negative integers", name, sh);
    uint64_t v = 0;
    for (; i < sh.size() && std::isdigit(static_cast<unsigned char>(sh[i])); ++i)
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, static_cast<uint64_t>(sh[i] - '0'), &v) ||
          v > static_cast<uint64_t>(INT64_MAX))
        fail("{}: the shape ({}) has a dimension too large", name, sh);
    if (i < sh.size() && sh[i] == 'L') ++i;
    if (r.shape.size() == kMaxDims) fail("{}: the shape ({}) has more than {} dimensions", name, sh, kMaxDims);
    r.shape.push_back(static_cast<int64_t>(v));
    skip_spaces();
    if (i == sh.size()) break;
    if (sh[i] != ',') fail("{}: the shape ({}) must hold non-negative integers", name, sh);
    ++i;
  }
  uint64_t bytes;
  if (!shape_bytes(r.shape, dtype_size(r.dtype), &bytes))
    fail("{}: the shape ({}) overflows: its nonzero dimensions need over 2^62 bytes", name, sh);
  r.data_offset = off + hl;
  r.data_bytes = static_cast<size_t>(bytes);
  return r;
}

void check_data_size(const Header& h, size_t file_size, const std::string& name) {
  const size_t have = file_size - h.data_offset;
  if (have != h.data_bytes)
    fail("{}: data is {} bytes but shape {} of {} needs {}", name, have, shape_str(h.shape), dtype_name(h.dtype),
         h.data_bytes);
}

}  // namespace

Tensor parse_npy(std::string_view bytes, const std::string& name) {
  const Header h = parse_header(bytes, name);
  check_data_size(h, bytes.size(), name);
  Tensor t = Tensor::empty(h.dtype, h.shape);
  if (h.data_bytes) std::memcpy(t.data, bytes.data() + h.data_offset, h.data_bytes);
  return t;
}

namespace {

// An open .npy file whose header has been read and checked against the file's size (nothing is
// allocated for the data before that).
struct OpenNpy {
  std::FILE* f = nullptr;
  std::string head;  // the first bytes: the header and maybe some data
  Header h;
  OpenNpy(const OpenNpy&) = delete;
  OpenNpy& operator=(const OpenNpy&) = delete;
  explicit OpenNpy(const std::string& path) {
    f = std::fopen(path.c_str(), "rb");
    if (!f) fail("{}: cannot open: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
      std::fclose(f);
      fail("{}: not a regular file", path);
    }
    const size_t size = static_cast<size_t>(st.st_size);
    try {
      head.resize(std::min(size, kMaxHeader + 12));
      if (std::fread(head.data(), 1, head.size(), f) != head.size()) fail("{}: read error", path);
      h = parse_header(head, path);
      check_data_size(h, size, path);
    } catch (...) {
      std::fclose(f);
      throw;
    }
  }
  ~OpenNpy() { std::fclose(f); }
};

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  OpenNpy n(path);
  return {n.h.dtype, n.h.shape, n.h.data_offset};
}

Tensor read_npy(const std::string& path) {
  OpenNpy n(path);
  std::FILE* f = n.f;
  const Header& h = n.h;
  const std::string& head = n.head;
  Tensor t = Tensor::empty(h.dtype, h.shape);
  const size_t in_head = std::min(h.data_bytes, head.size() - h.data_offset);
  if (in_head) std::memcpy(t.data, head.data() + h.data_offset, in_head);
  const size_t rest = h.data_bytes - in_head;
  if (rest && std::fread(static_cast<char*>(t.data) + in_head, 1, rest, f) != rest)
    fail("{}: read error (the file changed while it was read?)", path);
  return t;
}

}  // namespace clipkit
