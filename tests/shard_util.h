// Writing WebDataset shards in tests: samples of (key, {extension: bytes}) into .tar files.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "io/atomic_file.h"
#include "io/tar_reader.h"

namespace clipkit::test {

struct ShardSampleSpec {
  std::string key;
  std::vector<std::pair<std::string, std::string>> members;  // extension -> bytes, in archive order
};

// Writes one shard; returns its path.
inline std::string write_shard(const std::string& path, const std::vector<ShardSampleSpec>& samples) {
  io::TarWriter w;
  for (auto& s : samples)
    for (auto& [ext, bytes] : s.members) w.add(s.key + "." + ext, bytes);
  write_file_atomic(path, w.finish());
  return path;
}

// Splits samples into shards of `per_shard` as DIR/00000.tar, 00001.tar, ...; returns the paths.
inline std::vector<std::string> write_shards(const std::string& dir, const std::vector<ShardSampleSpec>& samples,
                                             size_t per_shard) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> out;
  for (size_t b = 0, k = 0; b < samples.size(); b += per_shard, ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "/%05zu.tar", k);
    std::vector<ShardSampleSpec> part(samples.begin() + static_cast<std::ptrdiff_t>(b),
                                      samples.begin() + static_cast<std::ptrdiff_t>(std::min(samples.size(), b + per_shard)));
    out.push_back(write_shard(dir + name, part));
  }
  return out;
}

}  // namespace clipkit::test
