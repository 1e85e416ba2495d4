#include "pipeline/shard_training.h"

#include <cstdio>

#include "core/error.h"
#include "core/parallel.h"
#include "image/batch.h"
#include "image/image.h"
#include "image/preprocess.h"

namespace clipkit::pipeline {

ShardBatches::ShardBatches(const Embedder& emb, std::vector<std::string> shards, dataset::ShardBatchOptions o,
                           int64_t max_seq_length)
    : emb_(emb), src_(std::move(shards), std::move(o)), max_seq_length_(max_seq_length), size_(src_.epoch_size()) {}

void ShardBatches::read(int64_t epoch, int64_t begin, int64_t end, Batch& b) {
  if (epoch != epoch_ || begin < cursor_) {
    src_.start_epoch(epoch);
    epoch_ = epoch;
    cursor_ = 0;
  }
  src_.skip_batches(begin - cursor_, 1);
  std::vector<dataset::BatchSample> got;
  if (end > begin) src_.next_batch(end - begin, &got);
  cursor_ = begin + static_cast<int64_t>(got.size());
  const int64_t n = static_cast<int64_t>(got.size());
  b.images = {};
  b.texts = {};
  b.images.n = b.texts.n = n;
  const image::PreprocessConfig& pre = emb_.preprocess_config();
  const int64_t per = static_cast<int64_t>(image::floats_per_image(pre));
  b.images.pixels.assign(static_cast<size_t>(n * per), 0.0f);
  std::vector<std::string> errors(static_cast<size_t>(n));
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const std::string& bytes = got[static_cast<size_t>(i)].image;
      try {
        image::Image img = image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                                got[static_cast<size_t>(i)].path, image::decode_options_for(pre));
        image::preprocess(img, pre, b.images.pixels.data() + i * per);
      } catch (const Error& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    }
  });
  for (auto& e : errors)
    if (!e.empty()) std::fprintf(stderr, "clipkit train: warning: %s (zero pixels used)\n", e.c_str());
  std::vector<std::string> captions;
  for (auto& s : got) captions.push_back(std::move(s.caption));
  if (n > 0) emb_.tokenize(captions, &b.texts.ids, &b.texts.mask, &b.texts.L, max_seq_length_);
}

std::unique_ptr<BatchSource> shard_training_batches(const Embedder& emb, const std::string& data,
                                                    const dataset::ShardBatchOptions& o, int64_t max_seq_length,
                                                    bool cached_features) {
  if (cached_features || !dataset::is_shard_spec(data)) return nullptr;
  return std::make_unique<ShardBatches>(emb, dataset::expand_shard_spec(data), o, max_seq_length);
}

}  // namespace clipkit::pipeline
