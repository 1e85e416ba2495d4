// Test helpers: the preprocess references are the shared .safetensors files gzip-compressed
// byte for byte (tests/data/reference/preprocess/*.safetensors.gz); this reads them back.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace clipkit::image::testing {

inline std::string data_dir() { return CLIPKIT_TEST_DATA; }

inline std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + got);
  gzclose(f);
  if (got < 0) throw std::runtime_error("gzip error in " + path);
  return out;
}

struct RefTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
};

struct RefFile {
  std::map<std::string, RefTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses a safetensors image (8-byte LE header length, JSON header, data).
inline RefFile parse_safetensors(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 8) throw std::runtime_error(name + ": too short");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  if (8 + n > b.size()) throw std::runtime_error(name + ": bad header length");
  auto j = nlohmann::json::parse(b.begin() + 8, b.begin() + 8 + static_cast<int64_t>(n));
  RefFile r;
  const size_t base = 8 + n;
  for (auto& [k, v] : j.items()) {
    if (k == "__metadata__") {
      for (auto& [mk, mv] : v.items()) r.metadata[mk] = mv.get<std::string>();
      continue;
    }
    RefTensor t;
    t.dtype = v["dtype"].get<std::string>();
    t.shape = v["shape"].get<std::vector<int64_t>>();
    size_t b0 = v["data_offsets"][0].get<size_t>(), b1 = v["data_offsets"][1].get<size_t>();
    if (base + b1 > b.size() || b0 > b1) throw std::runtime_error(name + ": bad offsets");
    t.bytes.assign(b.begin() + static_cast<int64_t>(base + b0), b.begin() + static_cast<int64_t>(base + b1));
    r.tensors[k] = std::move(t);
  }
  return r;
}

inline RefFile load_reference(const std::string& file, const std::string& folder = "preprocess") {
  std::string path = data_dir() + "/reference/" + folder + "/" + file + ".gz";
  return parse_safetensors(read_gz(path), path);
}

inline nlohmann::json load_cases() {
  std::string path = data_dir() + "/reference/preprocess/cases.json";
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::string s;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, got);
  std::fclose(f);
  return nlohmann::json::parse(s);
}

}  // namespace clipkit::image::testing
