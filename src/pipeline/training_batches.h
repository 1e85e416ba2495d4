// Where the trainer's batches come from (train::train reads them; sources live beside their data:
// train::CaptionBatches for caption datasets, pipeline::ShardBatches for WebDataset shards). A batch
// holds, per tower, either what the tower reads (pixels; token ids and mask) or, for a frozen
// tower, its cached pooled outputs (train/feature_cache.h). The loop only asks a BatchSource for
// positions of an epoch's sample order, so a streaming source plugs in beside a random-access one.
#pragma once
#include <cstdint>
#include <vector>

namespace clipkit::pipeline {

// One tower's input for n samples (host memory).
struct TowerInput {
  int64_t n = 0, L = 0;
  std::vector<float> features;     // [n, C]: a frozen tower's pooled outputs
  std::vector<float> pixels;       // [n, 3, S, S]
  std::vector<int32_t> ids, mask;  // [n, L]
};

struct Batch {
  TowerInput images, texts;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;  // samples per epoch
  // Samples [begin, end) of `epoch`'s order (a rank's share of a global batch; begin grows within an epoch).
  virtual void read(int64_t epoch, int64_t begin, int64_t end, Batch& b) = 0;
};

}  // namespace clipkit::pipeline
