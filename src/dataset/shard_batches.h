// Training batches streamed from WebDataset shards, shuffled the way webdataset does it: the shard
// order is shuffled each epoch and samples pass through a shuffle buffer that spans shard
// boundaries. Everything random comes from (seed, epoch), so a run is reproducible, and resuming
// at a step replays the stream without reading or decoding a single image.
//
// The order, precisely (what a reimplementation must do to match):
//   rng    = SplitMix64(seed ^ (0x9E3779B97F4A7C15 * (epoch + 1)))
//   shards = spec order; when shuffling, Fisher-Yates: for i = n-1..1: j = rng() % (i+1), swap(i, j)
//   buffer: fill with the first `shuffle_buffer` samples of the stream; then, for each sample
//           emitted: k = rng() % buffer size, emit buffer[k], and put the stream's next sample in its
//           place (when the stream is exhausted, move the last entry there and shrink the buffer)
//   batches are consecutive runs of `batch` emitted samples; the last one of an epoch may be short.
// Without shuffling the stream order is kept: shards in spec order, samples in archive order --
// the row order of a CSV/JSONL table listing the same samples.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataset/webdataset.h"

namespace clipkit::dataset {

struct ShardBatchOptions {
  uint64_t seed = 42;
  bool shuffle = true;
  int64_t shuffle_buffer = 1000;  // samples (webdataset's .shuffle(1000))
  std::string caption_key = "txt";
};

// One training sample: its caption and its image's encoded bytes.
struct BatchSample {
  int64_t index = -1;  // position in the unshuffled stream (= row of the equivalent table)
  std::string key, caption;
  std::string path;    // SHARD/MEMBER
  std::string image;   // encoded bytes (JPEG, PNG, ...)
};

class ShardBatchSource {
 public:
  ShardBatchSource(std::vector<std::string> shards, ShardBatchOptions o);
  ~ShardBatchSource();

  // Samples per epoch (counted once, by a scan that skips image data).
  int64_t epoch_size();
  // Restarts the stream at the beginning of `epoch` (shard order and RNG from seed and epoch).
  void start_epoch(int64_t epoch);
  // The next batch of up to `batch` samples with their image bytes; false when the epoch is over.
  bool next_batch(int64_t batch, std::vector<BatchSample>* out);
  // Passes over `batches` batches of `batch` samples without reading image data (resume at a step).
  void skip_batches(int64_t batches, int64_t batch);
  // Problems met in the current epoch's stream so far.
  LoadReport report() const;
  // Image bytes read since construction (tests: skipping reads none).
  int64_t image_bytes_read() const { return image_bytes_read_; }

 private:
  struct Entry {
    ShardSample s;
    bool loaded = false;
  };
  bool emit(Entry* out, bool load);  // the next sample of the epoch, false at its end
  bool pull(Entry* e, bool load);    // the next sample of the stream

  std::vector<std::string> shards_;
  ShardBatchOptions o_;
  std::vector<int64_t> order_;       // this epoch's shard order (indices into shards_)
  std::vector<int64_t> first_row_;   // unshuffled row of each shard's first sample (from the scan)
  std::unique_ptr<ShardStream> stream_;
  std::vector<Entry> buffer_;
  bool stream_done_ = false;
  uint64_t rng_ = 0;
  int64_t epoch_size_ = -1;
  int64_t image_bytes_read_ = 0;
  uint64_t next_rand();
};

}  // namespace clipkit::dataset
