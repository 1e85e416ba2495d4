// pipeline::ShardBatches: the trainer's positions of an epoch read from WebDataset shards; a read
// at a later position (a resumed run, another rank's share) passes over the samples before it
// without reading their images, and gives what a reader going through the epoch gets there.
#include "pipeline/shard_training.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <unistd.h>

#include "core/error.h"
#include "dataset/caption_dataset.h"
#include "io/atomic_file.h"
#include "shard_util.h"
#include "test_util.h"

namespace clipkit::pipeline {
namespace {

namespace fs = std::filesystem;
using test::data_path;

struct Shards {
  std::string dir;
  std::vector<std::string> files;
  std::map<std::string, int64_t> bytes;  // image bytes per key
  Shards() {
    dir = (fs::temp_directory_path() / ("clipkit_shard_training_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
    auto s = test::coco_val_samples();
    for (auto& x : s) bytes[x.key] = static_cast<int64_t>(x.members[0].second.size());
    files = test::write_shards(dir, s, 10);  // 40 samples, 4 shards
  }
  ~Shards() { fs::remove_all(dir); }
};

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.images.n, b.images.n);
  EXPECT_EQ(a.images.pixels, b.images.pixels);
  EXPECT_EQ(a.texts.ids, b.texts.ids);
  EXPECT_EQ(a.texts.mask, b.texts.mask);
}

TEST(ShardBatches, ALaterPositionReadsOnlyItsOwnImages) {
  Shards f;
  auto emb = Embedder::load(data_path("models/tiny-clip"));
  for (bool shuffle : {false, true}) {
    dataset::ShardBatchOptions o;
    o.shuffle = shuffle;
    o.seed = 7;
    o.shuffle_buffer = 12;
    ShardBatches walk(*emb, f.files, o, 32), jump(*emb, f.files, o, 32);
    ASSERT_EQ(walk.size(), 40);
    Batch a, b;
    for (int64_t epoch = 0; epoch < 2; ++epoch)
      for (int64_t s = 0; s < 40; s += 8) {
        walk.read(epoch, s, s + 8, a);
        ASSERT_EQ(a.images.n, 8);
        if (epoch == 1 && s == 24) break;
      }
    // a resumed run at step 3 of epoch 1 (batch 8): samples 24..31, nothing before them decoded
    const int64_t before = jump.source().image_bytes_read();
    jump.read(1, 24, 32, b);
    expect_same(a, b);
    if (!shuffle) {  // in stream order the images read are exactly these 8 (shards of 10: samples 24..31)
      int64_t want = 0, i = 0;
      for (auto& [key, n] : f.bytes)
        if (i++ >= 24 && i <= 32) want += n;
      EXPECT_EQ(jump.source().image_bytes_read() - before, want);
    }
    // a rank's share: positions 34..37 after 32..33 went to another rank
    walk.read(1, 32, 34, a);
    walk.read(1, 34, 38, a);
    jump.read(1, 34, 38, b);
    expect_same(a, b);
    // going back (a new run of the same epoch) restarts the stream
    walk.read(1, 0, 8, a);
    ShardBatches fresh(*emb, f.files, o, 32);
    fresh.read(1, 0, 8, b);
    expect_same(a, b);
  }
}

TEST(ShardBatches, OnlyForShardsWithoutCachedFeatures) {
  Shards f;
  auto emb = Embedder::load(data_path("models/tiny-clip"));
  const std::string spec = f.dir + "/{00000..00003}.tar";
  EXPECT_NE(shard_training_batches(*emb, spec, {}, 32, false), nullptr);
  EXPECT_EQ(shard_training_batches(*emb, spec, {}, 32, true), nullptr);  // a frozen tower: train::CaptionBatches
  EXPECT_EQ(shard_training_batches(*emb, data_path("datasets/coco-tiny"), {}, 32, false), nullptr);
  EXPECT_THROW(shard_training_batches(*emb, f.dir + "/{00004..00005}.tar", {}, 32, false), Error);  // no such shards
}

}  // namespace
}  // namespace clipkit::pipeline
