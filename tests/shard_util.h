// Writing WebDataset shards in tests: samples of (key, {extension: bytes}) into .tar files.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dataset/caption_dataset.h"
#include "io/atomic_file.h"
#include "io/tar_reader.h"
#include "test_util.h"

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

// "'DIR/{00000..NNNNN}.tar'" (quoted for the shell): the shards write_shards made.
inline std::string shard_spec(const std::string& dir, int shards) {
  char last[16];
  std::snprintf(last, sizeof last, "%05d", shards - 1);
  return "'" + dir + "/{00000.." + last + "}.tar'";
}

// The 40 coco-tiny val images with their first caption, in file-name order, as samples in
// img2dataset's layout: KEY.jpg, KEY.txt, KEY.json {"caption", "url"}.
inline std::vector<ShardSampleSpec> coco_val_samples() {
  const std::string root = data_path("datasets/coco-tiny");
  auto ds = dataset::load_coco(root, "val");
  std::map<std::string, std::string> caption;
  for (auto& r : ds.rows) caption.emplace(r.file_name, r.caption);
  std::vector<ShardSampleSpec> out;
  for (auto& [file, cap] : caption) {
    const std::string key = file.substr(0, file.size() - 4);
    out.push_back({key,
                   {{"jpg", read_file(root + "/val2017/" + file)},
                    {"txt", cap},
                    {"json", nlohmann::json{{"caption", cap}, {"url", "http://x/" + file}}.dump()}}});
  }
  return out;
}

}  // namespace clipkit::test
