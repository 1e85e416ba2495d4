#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit (100 MB)

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) munmap(addr, size);
  }
};

std::shared_ptr<Mapping> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("{}: is a directory, not a safetensors file", path);
  }
  auto m = std::make_shared<Mapping>();
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    m->addr = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->addr == MAP_FAILED) {
      ::close(fd);
      fail("{}: mmap failed: {}", path, std::strerror(errno));
    }
  }
  ::close(fd);
  return m;
}

}  // namespace

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  auto m = map_file(path);
  parse(static_cast<const uint8_t*>(m->addr), m->size, m);
}

SafeTensorsFile SafeTensorsFile::from_bytes(std::string bytes, const std::string& name) {
  SafeTensorsFile f;
  f.path_ = name;
  auto held = std::make_shared<std::string>(std::move(bytes));
  f.parse(reinterpret_cast<const uint8_t*>(held->data()), held->size(), held);
  return f;
}

void SafeTensorsFile::parse(const uint8_t* base, size_t size, const std::shared_ptr<void>& m) {
  const std::string& path = path_;
  if (size < 8) fail("{}: not a safetensors file: {} bytes, shorter than the 8-byte header length", path, size);
  uint64_t n;
  std::memcpy(&n, base, 8);
  if (n > kMaxHeader) fail("{}: header length {} is larger than the 100 MB limit", path, n);
  if (n > size - 8) fail("{}: header length {} runs past the end of the file ({} bytes): truncated?", path, n, size);
  json h;
  std::string why;
  if (!try_parse_json(std::string_view(reinterpret_cast<const char*>(base + 8), n), &h, &why))
    fail("{}: header is not valid JSON: {}", path, why);
  if (!h.is_object()) fail("{}: header must be a JSON object", path);
  const uint64_t data_size = size - 8 - n;
  const uint8_t* data = base + 8 + n;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> ranges;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ must be an object of strings", path);
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) fail("{}: __metadata__[\"{}\"] is not a string", path, k);
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail("{}: tensor \"{}\": entry must be an object", path, name);
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail("{}: tensor \"{}\": missing or non-string dtype", path, name);
    if (sh == v.end() || !sh->is_array()) fail("{}: tensor \"{}\": missing or non-array shape", path, name);
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail("{}: tensor \"{}\": data_offsets must be [begin, end] non-negative integers", path, name);
    Tensor t;
    if (!dtype_from_name(dt->get<std::string>(), &t.dtype))
      fail("{}: tensor \"{}\": unsupported dtype \"{}\" (supported: F32 F16 BF16 F64 I64 I32 U8)", path, name,
           dt->get<std::string>());
    for (auto& d : *sh) {
      if (!d.is_number_unsigned()) fail("{}: tensor \"{}\": shape entries must be non-negative integers", path, name);
      if (d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        fail("{}: tensor \"{}\": shape entry {} is too large", path, name, d.get<uint64_t>());
      t.shape.push_back(d.get<int64_t>());
    }
    uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>(), bytes;
    if (!shape_bytes(t.shape, dtype_size(t.dtype), &bytes))
      fail("{}: tensor \"{}\": shape {} overflows: its nonzero dimensions need over 2^62 bytes", path, name,
           shape_str(t.shape));
    if (e < b) fail("{}: tensor \"{}\": data_offsets end {} < begin {}", path, name, e, b);
    if (e > data_size)
      fail("{}: tensor \"{}\": data_offsets [{}, {}] out of range: the data section has {} bytes (truncated file?)",
           path, name, b, e, data_size);
    if (e - b != bytes)
      fail("{}: tensor \"{}\": {} bytes in the file but dtype {} x shape {} needs {}", path, name, e - b,
           dtype_name(t.dtype), shape_str(t.shape), bytes);
    const uint8_t* src = data + b;
    if (reinterpret_cast<uintptr_t>(src) % dtype_size(t.dtype) != 0) {
      // the format packs tensors back to back, so one can start misaligned for its dtype: copy it
      Tensor c = Tensor::empty(t.dtype, t.shape);
      std::memcpy(c.data, src, bytes);
      t.data = c.data;
      t.holder = c.holder;
    } else {
      t.data = const_cast<uint8_t*>(src);  // read-only mapping; tensors from files are never written
      t.holder = m;
    }
    tensors_.emplace(name, std::move(t));
    ranges.push_back({{b, e}, name});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first.first < ranges[i - 1].first.second)
      fail("{}: tensors \"{}\" and \"{}\" overlap in the data section", path, ranges[i - 1].second, ranges[i].second);
}

const Tensor& SafeTensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("{}: no tensor named \"{}\"", path_, name);
  return it->second;
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  fs::path d(dir);
  if (fs::is_regular_file(d)) {  // a single .safetensors file
    SafeTensorsFile f(dir);
    tensors_ = f.tensors();
    return;
  }
  if (!fs::is_directory(d)) fail("{}: no such checkpoint folder", dir);
  if (fs::exists(d / "model.safetensors")) {
    SafeTensorsFile f((d / "model.safetensors").string());
    tensors_ = f.tensors();
    return;
  }
  fs::path index = d / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    if (fs::exists(d / "pytorch_model.bin"))
      fail("{}: only pytorch_model.bin found; clipkit reads safetensors (convert with "
           "`model.save_pretrained(dir, safe_serialization=True)`)", dir);
    fail("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  json j = parse_json(read_file(index.string()), index.string());
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail("{}: missing \"weight_map\" object", index.string());
  std::map<std::string, std::unique_ptr<SafeTensorsFile>> shards;
  for (auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) fail("{}: weight_map[\"{}\"] is not a file name", index.string(), name);
    auto file = shard.get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      fail("{}: shard name \"{}\" must be a file in the same folder", index.string(), file);
    auto& s = shards[file];
    if (!s) s = std::make_unique<SafeTensorsFile>((d / file).string());
    if (!s->has(name)) fail("{}: tensor \"{}\" listed in {} is missing from it", index.string(), name, file);
    tensors_[name] = s->get(name);
  }
}

namespace {

// The first element of v[0, n) whose exponent bits are all ones (NaN or infinity), or n. Blocks are
// tested with a branch-free OR that the compiler vectorizes; only a block holding one is searched.
template <typename U>
int64_t first_non_finite(const U* v, int64_t n, U exp_mask) {
  constexpr int64_t kBlock = 4096;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    bool any = false;
    for (int64_t i = b; i < e; ++i) any |= (v[i] & exp_mask) == exp_mask;
    if (!any) continue;
    for (int64_t i = b; i < e; ++i)
      if ((v[i] & exp_mask) == exp_mask) return i;
  }
  return n;
}

int64_t first_non_finite(const Tensor& t, int64_t b, int64_t e) {
  int64_t at = 0;
  switch (t.dtype) {
    case DType::F32: at = first_non_finite(t.ptr<uint32_t>() + b, e - b, uint32_t{0x7f800000u}); break;
    case DType::F64: at = first_non_finite(t.ptr<uint64_t>() + b, e - b, uint64_t{0x7ff0000000000000ull}); break;
    case DType::F16: at = first_non_finite(t.ptr<uint16_t>() + b, e - b, uint16_t{0x7c00u}); break;
    default: at = first_non_finite(t.ptr<uint16_t>() + b, e - b, uint16_t{0x7f80u}); break;  // BF16
  }
  return b + at;
}

}  // namespace

void Checkpoint::require_finite(const std::function<bool(const std::string&)>& which) const {
  for (const auto& entry : tensors_) {
    if (which && !which(entry.first)) continue;
    const Tensor& t = entry.second;  // (a structured binding cannot be captured by the lambda below in clang 14)
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 && t.dtype != DType::F64) continue;
    const int64_t n = t.numel();
    std::atomic<int64_t> first{n};
    parallel_for(n, [&](int64_t b, int64_t e) {
      const int64_t at = first_non_finite(t, b, e);
      if (at == e) return;
      int64_t cur = first.load();
      while (at < cur && !first.compare_exchange_weak(cur, at)) {
      }
    }, 1 << 16);
    if (first.load() < n)
      fail("{}: tensor \"{}\" holds NaN or infinity at element {}: the weights are corrupt (they would give NaN "
           "embeddings)", dir_, entry.first, first.load());
  }
}

const Tensor& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("{}: checkpoint has no tensor \"{}\"", dir_, name);
  return it->second;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__") fail("{}: a tensor cannot be named __metadata__", path);
    uint64_t n = t.nbytes();
    h[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string hs = json_text(h);
  hs.append((8 - hs.size() % 8) % 8, ' ');  // align the data section to 8 bytes, as the reference writer does
  uint64_t len = hs.size();
  AtomicFile f(path);
  f.write(&len, 8);
  f.write(hs);
  for (auto& [name, t] : tensors) f.write(t.data, t.nbytes());
  f.commit();
}

}  // namespace clipkit
