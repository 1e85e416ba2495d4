#include "dataset/shard_batches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "dataset/caption_dataset.h"
#include "io/atomic_file.h"
#include "shard_util.h"

namespace clipkit::dataset {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  fs::path dir;
  std::vector<std::string> shards;
  std::string table;  // a CSV listing the same samples, as image files
  int64_t n = 0;
  explicit Fixture(int64_t n_samples, size_t per_shard) : n(n_samples) {
    dir = fs::temp_directory_path() / ("clipkit_batches_" + std::to_string(::getpid()) + "_" + std::to_string(n));
    fs::remove_all(dir);
    fs::create_directories(dir / "images");
    std::vector<test::ShardSampleSpec> s;
    std::string csv = "image_path,caption\n";
    for (int64_t i = 0; i < n; ++i) {
      char key[32];
      std::snprintf(key, sizeof key, "%06lld", static_cast<long long>(i));
      const std::string img = "image bytes of sample " + std::to_string(i) + std::string(static_cast<size_t>(i % 7) * 100, 'x');
      const std::string cap = "caption " + std::to_string(i);
      s.push_back({key, {{"jpg", img}, {"txt", cap}}});
      write_file_atomic((dir / "images" / (std::string(key) + ".jpg")).string(), img);
      csv += "images/" + std::string(key) + ".jpg," + cap + "\n";
    }
    shards = test::write_shards(dir.string(), s, per_shard);
    table = (dir / "table.csv").string();
    write_file_atomic(table, csv);
  }
  ~Fixture() { fs::remove_all(dir); }
};

std::vector<std::vector<BatchSample>> epoch(ShardBatchSource& src, int64_t e, int64_t batch) {
  src.start_epoch(e);
  std::vector<std::vector<BatchSample>> out;
  std::vector<BatchSample> b;
  while (src.next_batch(batch, &b)) out.push_back(b);
  return out;
}

std::vector<int64_t> indices(const std::vector<std::vector<BatchSample>>& bs) {
  std::vector<int64_t> v;
  for (auto& b : bs)
    for (auto& s : b) v.push_back(s.index);
  return v;
}

TEST(ShardBatches, WithoutShufflingTheyAreTheTableRowsInOrder) {
  Fixture f(23, 5);
  ShardBatchOptions o;
  o.shuffle = false;
  ShardBatchSource src(f.shards, o);
  EXPECT_EQ(src.epoch_size(), 23);
  auto table = load_caption_table(f.table);
  ASSERT_EQ(table.rows.size(), 23u);
  auto bs = epoch(src, 0, 4);
  ASSERT_EQ(bs.size(), 6u);  // 5 full batches and the last partial one, as HF keeps it
  EXPECT_EQ(bs.back().size(), 3u);
  size_t r = 0;
  for (auto& b : bs)
    for (auto& s : b) {
      EXPECT_EQ(s.index, static_cast<int64_t>(r));
      EXPECT_EQ(s.caption, table.rows[r].caption);
      EXPECT_EQ(s.image, read_file(table.rows[r].image_path)) << r;
      ++r;
    }
  // the same in a later epoch
  EXPECT_EQ(indices(epoch(src, 3, 4)), indices(bs));
}

TEST(ShardBatches, ShuffleIsASeededPermutationAcrossShards) {
  Fixture f(60, 7);
  ShardBatchOptions o;
  o.seed = 7;
  o.shuffle_buffer = 10;
  ShardBatchSource a(f.shards, o), b(f.shards, o);
  auto e0 = epoch(a, 0, 8);
  EXPECT_EQ(indices(e0), indices(epoch(b, 0, 8)));  // deterministic
  auto v = indices(e0);
  std::vector<int64_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 60; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);  // every sample once
  EXPECT_NE(v, sorted);                                                              // and shuffled
  EXPECT_NE(indices(epoch(a, 1, 8)), v);                                             // epochs differ
  o.seed = 8;
  ShardBatchSource c(f.shards, o);
  EXPECT_NE(indices(epoch(c, 0, 8)), v);  // seeds differ
  // the buffer mixes shards: some batch holds samples of two or more shards
  bool mixed = false;
  for (auto& batch : e0) {
    std::set<int64_t> sh;
    for (auto& s : batch) sh.insert(s.index / 7);
    mixed |= sh.size() > 1;
  }
  EXPECT_TRUE(mixed);
  // captions and images travel with their index
  for (auto& batch : e0)
    for (auto& s : batch) {
      EXPECT_EQ(s.caption, "caption " + std::to_string(s.index));
      EXPECT_EQ(s.image.substr(0, 22 + std::to_string(s.index).size()), "image bytes of sample " + std::to_string(s.index));
    }
}

TEST(ShardBatches, ResumingAtAStepSkipsWithoutReadingImages) {
  Fixture f(50, 6);
  ShardBatchOptions o;
  o.shuffle_buffer = 9;
  ShardBatchSource full(f.shards, o);
  auto all = epoch(full, 2, 4);
  ShardBatchSource resumed(f.shards, o);
  const int64_t before = resumed.image_bytes_read();
  resumed.start_epoch(2);
  resumed.skip_batches(5, 4);
  EXPECT_EQ(resumed.image_bytes_read(), before);  // nothing read while skipping
  std::vector<BatchSample> b;
  for (size_t i = 5; i < all.size(); ++i) {
    ASSERT_TRUE(resumed.next_batch(4, &b)) << i;
    ASSERT_EQ(b.size(), all[i].size());
    for (size_t j = 0; j < b.size(); ++j) {
      EXPECT_EQ(b[j].index, all[i][j].index);
      EXPECT_EQ(b[j].image, all[i][j].image);  // entries that entered the buffer while skipping are read on demand
      EXPECT_EQ(b[j].caption, all[i][j].caption);
    }
  }
  EXPECT_FALSE(resumed.next_batch(4, &b));
  // without shuffling too
  o.shuffle = false;
  ShardBatchSource plain(f.shards, o);
  plain.start_epoch(0);
  plain.skip_batches(3, 4);
  ASSERT_TRUE(plain.next_batch(4, &b));
  EXPECT_EQ(b[0].index, 12);
  EXPECT_THROW(ShardBatchSource({}, o), Error);
}

}  // namespace
}  // namespace clipkit::dataset
