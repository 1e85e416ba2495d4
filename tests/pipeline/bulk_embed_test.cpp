// Bulk embedding into shards: an interrupted run, resumed, writes exactly the files of an
// uninterrupted run; unreadable files are listed and skipped; a folder of other shards is refused.
#include "pipeline/bulk_embed.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "cli/cli_util.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "test_util.h"

namespace clipkit::pipeline {
namespace {

namespace fs = std::filesystem;

std::vector<BulkItem> inputs() {
  auto items = list_image_folder(test::data_path("datasets/coco-tiny/val2017"));
  items.resize(23);
  BulkItem bad;
  bad.path = test::data_path("images/bad/not_an_image.png");
  items.insert(items.begin() + 9, bad);
  return items;
}

TEST(BulkEmbed, ResumedRunWritesTheSameShardsAsAnUninterruptedOne) {
  auto e = Embedder::load(test::data_path("models/tiny-clip"));
  auto items = inputs();
  const auto dir = test::temp_dir("bulk_resume");
  BulkEmbedOptions o;
  o.batch_size = 4;
  o.shard_size = 7;  // 24 inputs -> 4 shards, the last one short
  o.decode_threads = 5;  // decoder threads of their own (more than prefetch_batches) here, in the OpenMP pool below
  auto full = bulk_embed(*e, items, dir + "/full", o);
  EXPECT_TRUE(full.complete);
  EXPECT_EQ(full.shards, 4);
  EXPECT_EQ(full.rows, 23);
  ASSERT_EQ(full.skipped.size(), 1u);
  EXPECT_NE(full.skipped[0].reason.find("not_an_image.png"), std::string::npos);

  o.stop_after_shards = 2;  // "killed" after two shards
  auto part = bulk_embed(*e, items, dir + "/resumed", o);
  EXPECT_FALSE(part.complete);
  EXPECT_EQ(part.shards_written, 2);
  // debris of a write that never finished
  write_file_atomic(dir + "/resumed/shard-00002.npy.tmp.999", "junk");
  o.stop_after_shards = -1;
  o.decode_threads = 0;  // the other decoding mode gives the same numbers
  auto rest = bulk_embed(*e, items, dir + "/resumed", o);
  EXPECT_TRUE(rest.complete);
  EXPECT_EQ(rest.shards_already_done, 2);
  EXPECT_EQ(rest.shards_written, 2);
  EXPECT_EQ(rest.rows, 23);
  for (int s = 0; s < 4; ++s) {
    char name[32];
    for (const char* ext : {"npy", "jsonl"}) {
      std::snprintf(name, sizeof name, "/shard-%05d.%s", s, ext);
      EXPECT_EQ(read_file(dir + "/full" + name), read_file(dir + "/resumed" + name)) << name;
    }
  }
  // a third run has nothing to do
  auto again = bulk_embed(*e, items, dir + "/resumed", o);
  EXPECT_EQ(again.shards_written, 0);
  EXPECT_EQ(again.rows, 23);
  // and the shards read back in order, rows matching metadata
  auto s = read_manifest(dir + "/full");
  int64_t rows = 0;
  for_each_shard(s, [&](const Tensor& x, const std::vector<nlohmann::json>& meta) {
    ASSERT_EQ(x.dim(0), static_cast<int64_t>(meta.size()));
    for (auto& m : meta) EXPECT_EQ(m["path"], items[m["input"].get<size_t>()].path);
    rows += x.dim(0);
  });
  EXPECT_EQ(rows, 23);
  fs::remove_all(dir);
}

TEST(BulkEmbed, DecodesOnThreadsOfItsOwnOnlyWhereTheModelLeavesCoresFree) {
  // a CPU model on every core: decode in its pool (a decoder thread would take a core from it)
  EXPECT_EQ(auto_decode_threads("cpu", 2, 2), 0);
  EXPECT_EQ(auto_decode_threads("cpu", 64, 64), 0);
  EXPECT_EQ(auto_decode_threads("cpu", 8, 4), 0);  // oversubscribed already
  // --threads below the cores: the free ones, up to 16
  EXPECT_EQ(auto_decode_threads("cpu", 1, 2), 1);
  EXPECT_EQ(auto_decode_threads("cpu", 4, 16), 12);
  EXPECT_EQ(auto_decode_threads("cpu", 8, 192), 16);
  // a GPU model: the CPU's cores decode, one left to drive the device
  EXPECT_EQ(auto_decode_threads("cuda", 16, 16), 15);
  EXPECT_EQ(auto_decode_threads("cuda", 2, 2), 1);
  EXPECT_EQ(auto_decode_threads("cuda", 1, 1), 1);
  EXPECT_EQ(auto_decode_threads("cuda", 96, 96), 16);
  // and the default asks for it
  EXPECT_EQ(BulkEmbedOptions{}.decode_threads, -1);
}

TEST(BulkEmbed, RefusesShardsOfOtherInputsOrModels) {
  auto e = Embedder::load(test::data_path("models/tiny-clip"));
  auto items = inputs();
  const auto dir = test::temp_dir("bulk_refuse");
  BulkEmbedOptions o;
  o.shard_size = 10;
  o.stop_after_shards = 1;
  bulk_embed(*e, items, dir, o);
  o.shard_size = 11;
  EXPECT_THROW(bulk_embed(*e, items, dir, o), Error);
  o.shard_size = 10;
  items.pop_back();
  EXPECT_THROW(bulk_embed(*e, items, dir, o), Error);
  auto other = Embedder::load(test::data_path("models/tiny-clip-roberta"));
  EXPECT_THROW(bulk_embed(*other, inputs(), dir, o), Error);
  fs::remove_all(dir);
}

TEST(BulkEmbed, ListsFoldersAndCoco) {
  auto f = list_image_folder(test::data_path("datasets/coco-tiny"));
  EXPECT_EQ(f.size(), 190u);  // train2017 + val2017, recursively
  EXPECT_TRUE(std::is_sorted(f.begin(), f.end(), [](auto& a, auto& b) { return a.path < b.path; }));
  auto c = list_coco(test::data_path("datasets/coco-tiny"), "val");
  ASSERT_EQ(c.size(), 40u);
  EXPECT_EQ(c[0].meta["split"], "val");
  EXPECT_GE(c[0].meta["captions"].size(), 1u);
  EXPECT_THROW(list_image_folder(test::data_path("nope")), Error);
}

}  // namespace
}  // namespace clipkit::pipeline
