// WebDataset shards as img2dataset writes them: `.tar` files whose members are grouped into
// samples by key (`DIR/KEY.EXT`: the key is the member's path up to the first '.' of its base name,
// as webdataset's base_plus_ext), each sample holding an image (`KEY.jpg` / .jpeg .png .webp .gif
// .bmp) and a caption (`KEY.txt`, or a field of `KEY.json`). Shards are read sequentially, one
// after the other, and never extracted.
//
// Shard lists are written as webdataset does: brace ranges and lists ("shards/{00000..00127}.tar",
// "{train,val}-{0..3}.tar"), globs ("shards/*.tar"), and several specs joined by "::".
//
// Problems never stop the stream; each is counted with examples (LoadReport kinds):
//   corrupt_header, truncated, unsupported_entry, oversized_header   (from the tar reader)
//   no_image            a sample without an image member (skipped)
//   no_caption          the caption member / .json field is missing or not text (skipped when captions are required)
//   invalid_json        KEY.json is not a JSON object (the sample is kept unless its caption came from it)
//   duplicate_member    two members with the same key and extension (the first is kept)
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataset/caption_dataset.h"

namespace clipkit::dataset {

// Expands a shard spec into archive paths, in spec order (braces in order, each glob sorted).
// Throws Error naming the pattern when a glob matches nothing or a named file does not exist.
std::vector<std::string> expand_shard_spec(const std::string& spec);
// Brace expansion alone (no file system access), as Python's braceexpand.
std::vector<std::string> brace_expand(const std::string& pattern);
// True when `spec` names WebDataset shards rather than a COCO folder or a caption table: it
// mentions ".tar" and is not an existing folder.
bool is_shard_spec(const std::string& spec);

struct ShardOptions {
  // "txt": the text of KEY.txt (clip-retrieval's --wds_caption_key default); any other value:
  // that field of KEY.json (img2dataset writes "caption" there).
  std::string caption_key = "txt";
  bool require_caption = true;  // samples without a caption are skipped (and counted)
  bool read_images = true;      // false: image members are located (offset, size) but not read
};

struct ShardSample {
  int64_t index = -1;      // position in the stream (0, 1, ... over all shards in order)
  int64_t shard_pos = -1;  // which of the stream's shards (index into its list)
  int64_t in_shard = -1;   // position among that shard's samples
  std::string shard;       // the archive
  std::string key;         // webdataset __key__
  std::string image_member;  // e.g. "00001/000123.jpg"
  uint64_t image_offset = 0, image_size = 0;  // where the image's bytes are in the archive
  std::string image;       // the bytes, when read
  bool has_caption = false;
  std::string caption;
  nlohmann::json json;     // KEY.json when present and valid, else null
  // "SHARD/MEMBER": the path that names this image everywhere (io::read_path_bytes opens it)
  std::string path() const { return shard + "/" + image_member; }
};

// Reads samples of shards one after the other. next() returns false after the last one.
class ShardStream {
 public:
  ShardStream(std::vector<std::string> shards, ShardOptions o);
  ~ShardStream();
  ShardStream(ShardStream&&) noexcept;
  // `load_image` overrides ShardOptions::read_images for this sample.
  bool next(ShardSample* s);
  bool next(ShardSample* s, bool load_image);
  // The problems met so far (rows = samples returned).
  LoadReport report() const;
  int64_t samples() const;

 private:
  struct State;
  std::unique_ptr<State> st_;
};

// Every sample of the shards, in order; returns the report.
LoadReport for_each_shard_sample(const std::vector<std::string>& shards, const ShardOptions& o,
                                 const std::function<void(ShardSample&)>& fn);

// The shards as a caption dataset (one row per sample with a caption; image_path = SHARD/MEMBER),
// for callers that want rows in memory. root = the spec, source = the first shard.
CaptionDataset load_shard_captions(const std::string& spec, const std::string& caption_key = "txt");

}  // namespace clipkit::dataset
