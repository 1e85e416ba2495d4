// Training over WebDataset shards: the trainer's batches streamed from dataset::ShardBatchSource
// (shard order shuffled per epoch, a shuffle buffer across shards, everything from the seed), the
// images decoded and preprocessed as they arrive. The trainer asks for positions of an epoch's
// order; reading the stream from where it stands forward, this source passes over samples before
// the asked position without reading their images -- how a resumed run (and each rank, for the
// other ranks' share of a batch) reaches its place. Without shuffling the order is the archives'
// order: the rows of a CSV/JSONL table listing the same samples, trained on identically.
//
// A frozen tower trains on cached outputs computed once per image; for it the trainer keeps
// train::CaptionBatches over dataset::load_captions(SHARDS), whose images are read through the
// archives (SHARD/MEMBER paths), in that source's epoch order.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dataset/shard_batches.h"
#include "pipeline/embedder.h"
#include "pipeline/training_batches.h"

namespace clipkit::pipeline {

class ShardBatches : public BatchSource {
 public:
  ShardBatches(const Embedder& emb, std::vector<std::string> shards, dataset::ShardBatchOptions o, int64_t max_seq_length);
  int64_t size() const override { return size_; }
  // Samples [begin, end) of `epoch`'s order. An image that does not decode trains as zero pixels,
  // with a warning on stderr (as train::CaptionBatches does for images it cannot keep in memory).
  void read(int64_t epoch, int64_t begin, int64_t end, Batch& b) override;
  const dataset::ShardBatchSource& source() const { return src_; }

 private:
  const Embedder& emb_;
  dataset::ShardBatchSource src_;
  int64_t max_seq_length_, size_;
  int64_t epoch_ = 0, cursor_ = 0;  // the stream stands at sample `cursor_` of `epoch_`
};

// The streamed source when `data` names WebDataset shards and no tower trains on cached features;
// nullptr otherwise (the caller's random-access source then reads the rows).
std::unique_ptr<BatchSource> shard_training_batches(const Embedder& emb, const std::string& data,
                                                    const dataset::ShardBatchOptions& o, int64_t max_seq_length,
                                                    bool cached_features);

}  // namespace clipkit::pipeline
