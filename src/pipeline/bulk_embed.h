// Embedding many images: folders (recursive), file lists, COCO datasets and WebDataset shards, into
// shards on disk, by one process or by several (ranks) sharing the work.
//
// Decoding + preprocessing run on worker threads ahead of the model, so the model does not wait
// on JPEG decoding. Output folder:
//   manifest.json                 model identity, inputs hash, shard size, finished shards (+ skipped files)
//   shard-00000.npy / .jsonl      float32 [rows, D] and one JSON object per row, same order
//   manifest.rank-R.json          while several ranks run: the shards rank R finished (merged into
//                                 manifest.json by combine_manifests, then removed)
// A shard covers a fixed slice of the inputs (in listing order: sorted paths for folders, archive
// order for WebDataset shards) and is written atomically, then recorded in a manifest; an
// interrupted run resumes by redoing only unrecorded shards, so the result is the same files an
// uninterrupted run writes, with no duplicates. With R ranks, output shard k is made by rank
// k % R: every shard's rows (and the batches inside it) are the same whichever rank makes it, so
// the folder equals a one-process run's, file for file.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/hash.h"
#include "core/progress.h"
#include "core/tensor.h"
#include "dataset/caption_dataset.h"
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
  std::string path;  // as opened (for an archive member: ARCHIVE/MEMBER, see io/tar_reader.h)
  nlohmann::json meta = nlohmann::json::object();  // relpath, captions, split, image_id, ...
  // An archive member: its bytes are `size` bytes at `offset` of `archive` (empty: a plain file).
  std::string archive;
  int64_t offset = -1, size = -1;
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
// The images of WebDataset shards (data/webdataset.h spec: braces, globs, "::"), in archive
// order, located by one pass that reads the caption members and skips image data. meta: relpath
// ("SHARD.tar/MEMBER"), key, shard, caption (from caption_key, when present), json (KEY.json).
// Problems met (corrupt or truncated archives, samples without image) go to *report when given.
std::vector<BulkItem> list_shards(const std::string& spec, const std::string& caption_key = "txt",
                                  dataset::LoadReport* report = nullptr);

struct BulkEmbedOptions {
  int batch_size = 32;
  int64_t shard_size = 10000;  // inputs per shard
  // Worker threads decoding ahead of the model; 0 = decode in the model's OpenMP pool between
  // batches; -1 = auto (auto_decode_threads).
  int decode_threads = -1;
  int prefetch_batches = 3;    // decoded batches allowed to wait for the model (at least one per decoder thread)
  bool normalize = true;
  image::DecodeOptions decode;
  // Several processes: this one makes the output shards k with k % ranks == rank.
  int rank = 0, ranks = 1;
  // out_dir holding shards of another model, input list or shard size: false refuses it (a user's
  // folder); true empties it and starts over (a work folder such as an index's, where a leftover
  // of an earlier or killed job must not block the next one).
  bool replace_other_runs = false;
  // Test hook: stop (as if killed) after writing this many shards in this run; -1 = never.
  int64_t stop_after_shards = -1;
  // Called after each batch with the number of batches embedded in this run (tests use it to kill
  // a process mid-shard).
  std::function<void(int64_t)> after_batch;
};

// decode_threads = -1 resolved. On a CPU whose cores the model's compute threads fill (the
// default), 0: a decoder thread could only take a core from the OpenMP team, which then waits for
// it at oneDNN's barriers, while decoding each batch in the pool costs the cores the decoding only;
// and one decoder thread (~380 640x480 JPEGs/s) would cap a many-core CPU's model. Where the model
// leaves cores free (--threads below the cores, or a GPU: all cores but one, left to the thread
// driving it), that many threads of their own, up to 16.
int auto_decode_threads(const std::string& device, int compute_threads, int cores);

struct BulkEmbedReport {
  int64_t inputs = 0, shards = 0, shards_already_done = 0, shards_written = 0;
  int64_t rows = 0;  // embedded rows in all finished shards
  std::vector<SkippedInput> skipped;  // over all finished shards
  double seconds = 0;                  // this run
  int64_t images_this_run = 0;
  bool complete = false;
};

// Embeds items into out_dir (created if missing), resuming a previous run into the same folder
// (whatever number of ranks made it). Each row's JSON holds the item's meta plus row, input, path,
// width, height, bytes and content_hash (core/hash.h content_hash of the encoded bytes, hex).
// Throws Error when out_dir holds shards of a different model, inputs or shard size.
// With ranks > 1 the report covers this rank's shards, and manifest.json is written afterwards by
// combine_manifests() (once every rank has returned).
BulkEmbedReport bulk_embed(const Embedder& e, const std::vector<BulkItem>& items, const std::string& out_dir,
                           const BulkEmbedOptions& o, Progress* p = nullptr);

// Merges the per-rank manifests of out_dir into manifest.json (and removes them); returns the
// whole folder's report (rows, shards, skipped inputs, complete).
BulkEmbedReport combine_manifests(const std::string& out_dir);

// An embeddings folder from vectors made elsewhere (generated benchmarks, other embedders): rows
// are appended in order and cut into shards of `shard_size`; finish() writes the manifest (complete).
class EmbeddingsWriter {
 public:
  EmbeddingsWriter(std::string dir, ModelIdentity model, int64_t dim, int64_t shard_size, bool normalized = true);
  // x [n, dim] with one JSON object per row (at least "path").
  void add(const float* x, int64_t n, const std::vector<nlohmann::json>& rows);
  void finish();

 private:
  void flush();
  std::string dir_;
  ModelIdentity model_;
  int64_t dim_, shard_size_;
  bool normalized_;
  std::vector<float> x_;
  std::vector<std::string> rows_;
  nlohmann::json shards_ = nlohmann::json::array();
  int64_t total_ = 0;
  Fnv1a paths_;
};

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
