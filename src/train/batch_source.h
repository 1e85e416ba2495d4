// The trainer's random-access batch source over a caption dataset (pipeline/training_batches.h
// says what a batch source is; WebDataset shards stream through pipeline/shard_training.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataset/caption_dataset.h"
#include "pipeline/embedder.h"
#include "pipeline/training_batches.h"
#include "dist/comm.h"
#include "train/feature_cache.h"

namespace clipkit::train {

using pipeline::Batch;
using pipeline::BatchSource;
using pipeline::TowerInput;

struct CaptionOptions {
  bool features_vision = false, features_text = false;  // the towers whose outputs come from the cache
  FeatureOptions features;
  int64_t max_seq_length = 128;
  int64_t pixel_cache_mb = 2048;  // preprocessed images kept in memory up to this size
  bool shuffle = true;
  uint64_t seed = 42;
  bool report = true;  // the lead rank lists skipped images and the feature cache on stderr
};

// The rows of a caption dataset (one sample per caption), shuffled per epoch, with their images
// decoded (kept preprocessed in memory when they fit) or their cached tower outputs. Unreadable
// images drop their rows (reported on stderr by the lead rank).
class CaptionBatches : public BatchSource {
 public:
  CaptionBatches(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds, const CaptionOptions& o, dist::Comm& comm);
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  void read(int64_t epoch, int64_t begin, int64_t end, Batch& b) override;

  // Random access, for evaluation: images by index, captions by (usable) row.
  int64_t images() const { return static_cast<int64_t>(image_paths_.size()); }
  const std::vector<int64_t>& row_image() const { return row_image_; }
  void image_inputs(const std::vector<int64_t>& images, TowerInput& out) const;
  void text_inputs(const std::vector<int64_t>& rows, TowerInput& out) const;

 private:
  const pipeline::Embedder& emb_;
  CaptionOptions o_;
  std::vector<int64_t> rows_, row_image_;  // dataset row and image index of each usable row
  std::vector<std::string> image_paths_, captions_;
  std::vector<float> pixels_;  // [Ni, 3, S, S] when cached
  std::optional<Features> feats_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

// The row order of an epoch: a seeded shuffle (or identity).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace clipkit::train
