// Embedding many images: folders (recursive), file lists and COCO datasets, into shards on disk.
//
// Decoding + preprocessing run on worker threads ahead of the model, so the model does not wait
// on JPEG decoding. Output folder:
//   manifest.json                 model identity, inputs hash, shard size, finished shards (+ skipped files)
//   shard-00000.npy / .jsonl      float32 [rows, D] and one JSON object per row, same order
// A shard covers a fixed slice of the (sorted) inputs and is written atomically, then recorded in
// the manifest; an interrupted run resumes by redoing only unrecorded shards, so the result is the
// same files an uninterrupted run writes, with no duplicates.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/tensor.h"
#include "pipeline/embedder.h"

namespace clipkit::pipeline {

// Which model made a set of embeddings: a hash of config.json and of the weight files' names,
// sizes and first MiB. Two folders holding the same checkpoint compare equal.
struct ModelIdentity {
  std::string dir;           // absolute path when computed
  std::string config_hash;   // FNV-1a 64 of config.json, hex
  std::string weights_hash;  // FNV-1a 64 of (name, size, first MiB) of each *.safetensors, hex
  std::string architecture;
  int64_t dim = 0;
  // The image preprocessing the embeddings were made with ("pil" | "torchvision"); "" when not
  // known (model_identity(dir) without loading). Identities recorded before the option existed
  // read back as "pil", which is what made them.
  std::string image_backend;

  nlohmann::json to_json() const;
  static ModelIdentity from_json(const nlohmann::json& j);
  bool same_model(const ModelIdentity& o) const {
    return config_hash == o.config_hash && weights_hash == o.weights_hash && (dim == 0 || o.dim == 0 || dim == o.dim) &&
           (image_backend.empty() || o.image_backend.empty() || image_backend == o.image_backend);
  }
  std::string describe() const;  // "DIR (config 1a2b..., weights 3c4d..., dim 512, images pil)"
};
ModelIdentity model_identity(const std::string& model_dir);
ModelIdentity model_identity(const Embedder& e);

// One input image and what is known about it before decoding.
struct BulkItem {
  std::string path;  // as opened
  nlohmann::json meta = nlohmann::json::object();  // relpath, captions, split, image_id, ...
};

// Image files under root (recursive, by extension: jpg jpeg png webp gif bmp, any case), sorted by
// path; relpath = path under root. Throws if root is not a folder.
std::vector<BulkItem> list_image_folder(const std::string& root);
// One path per line (blank and '#' lines skipped), in file order.
std::vector<BulkItem> list_image_file(const std::string& list_path);
// COCO 2017 images (one item per image, with all its captions), split "train", "val" or "" (= every
// split that has an annotations file). Rows the loader skips (image file missing, bad records: what
// `clipkit data check` reports) are left out; *dropped, when given, gets one line per kind of
// problem ("val: 3 x image file missing ...") and the number of rows left out.
std::vector<BulkItem> list_coco(const std::string& root, const std::string& split,
                                std::vector<std::string>* dropped = nullptr, int64_t* dropped_rows = nullptr);

struct BulkEmbedOptions {
  int batch_size = 32;
  int64_t shard_size = 10000;  // inputs per shard
  int decode_threads = 1;      // worker threads decoding ahead of the model; 0 = decode in the OpenMP pool between batches
  int prefetch_batches = 3;    // decoded batches allowed to wait for the model
  bool normalize = true;
  image::DecodeOptions decode;
  // out_dir holding shards of another model, input list or shard size: false refuses it (a user's
  // folder); true empties it and starts over (a work folder such as an index's, where a leftover
  // of an earlier or killed job must not block the next one).
  bool replace_other_runs = false;
  // Test hook: stop (as if killed) after writing this many shards in this run; -1 = never.
  int64_t stop_after_shards = -1;
};

struct BulkEmbedReport {
  int64_t inputs = 0, shards = 0, shards_already_done = 0, shards_written = 0;
  int64_t rows = 0;  // embedded rows in all finished shards
  std::vector<SkippedInput> skipped;  // over all finished shards
  double seconds = 0;                  // this run
  int64_t images_this_run = 0;
  bool complete = false;
};

// Embeds items into out_dir (created if missing), resuming a previous run into the same folder.
// Throws Error when out_dir holds shards of a different model, inputs or shard size.
BulkEmbedReport bulk_embed(const Embedder& e, const std::vector<BulkItem>& items, const std::string& out_dir,
                           const BulkEmbedOptions& o, Progress* p = nullptr);

// A finished embeddings folder, read back shard by shard.
struct EmbeddingShards {
  ModelIdentity model;
  int64_t dim = 0, rows = 0;
  bool complete = false;
  std::vector<std::string> npy, jsonl;  // finished shards, in order
  std::vector<SkippedInput> skipped;
};
EmbeddingShards read_manifest(const std::string& dir);  // throws Error if dir has no manifest
// Calls fn(x [n, D], rows' JSON) for each finished shard in order.
void for_each_shard(const EmbeddingShards& s,
                    const std::function<void(const Tensor&, const std::vector<nlohmann::json>&)>& fn);

}  // namespace clipkit::pipeline
