// Frozen towers are deterministic functions of their inputs, so each unique image's and caption's
// pooled tower output is computed once and kept on disk, keyed by the model, the preprocessing,
// the tokenization length and the data. Epochs then run over the cache.
#pragma once
#include <string>
#include <vector>

#include "core/progress.h"
#include "dataset/caption_dataset.h"
#include "pipeline/embedder.h"
#include "dist/comm.h"

namespace clipkit::train {

struct Features {
  Tensor images;                 // [Ni, Cv] pooled vision outputs (post_layernorm CLS)
  Tensor texts;                  // [Nr, Ct] pooled text outputs, one per usable row
  std::vector<int64_t> rows;     // dataset row index of each usable row
  std::vector<int64_t> row_image;  // per usable row: its image's index in `images`
  std::vector<std::string> skipped;  // "<path>: <reason>" for unreadable images (their rows dropped)
  bool from_cache = false;
};

struct FeatureOptions {
  int batch_size = 32;
  int64_t max_seq_length = 128;
  std::string cache_dir;  // "" = no disk cache
};

// Computes (split across ranks) or loads the features of every row of `ds`.
Features compute_features(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds, const FeatureOptions& o,
                          dist::Comm& comm);

// A stable 64-bit key (hex) of everything the features depend on.
std::string features_key(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds, const FeatureOptions& o);

}  // namespace clipkit::train
