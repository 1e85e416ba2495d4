// `clipkit train` / `eval` over WebDataset shards: equal to training on a table of the same rows
// (stream order without shuffling; damaged members counted and skipped), the same seed giving the
// same run, a stopped run resumed at its step equal to an uninterrupted one, 2 ranks equal to 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/tar_reader.h"
#include "shard_util.h"
#include "test_util.h"
#include "train_cli_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;
namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kDual = data_path("models/tiny-clip-roberta");

// metrics.jsonl without the timing field
std::vector<json> metrics(const std::string& out) {
  std::vector<json> m;
  std::istringstream in(read_file(out + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) m.push_back(json::parse(line)), m.back().erase("samples_per_s");
  return m;
}

void expect_same_run(const std::string& a, const std::string& b) {
  EXPECT_EQ(read_file(a + "/model.safetensors"), read_file(b + "/model.safetensors"));
  EXPECT_EQ(metrics(a), metrics(b));
}

// 40 coco-tiny samples in 4 shards, with damage: a sample without image (the first of shard 1)
// and a corrupt header on the image of another (sample 23 of the 40); the table lists the 39
// samples that survive, in stream order.
struct DamagedShards {
  std::string dir, spec, table;
  DamagedShards() {
    dir = test::temp_dir("wds_train");
    auto s = test::coco_val_samples();
    s.insert(s.begin() + 10, {"no-image", {{"txt", "a caption without its image"}}});
    auto files = test::write_shards(dir + "/shards", s, 11);  // 41 samples: 11, 11, 11, 8
    spec = test::shard_spec(dir + "/shards", 4);
    std::string bytes = read_file(files[2]);
    const std::string victim = s[24].key + ".jpg";  // the 3rd sample of shard 2
    io::parse_tar(bytes, [&](const io::TarMember& m, std::string_view) {
      if (m.name == victim) bytes[m.header_offset] ^= 0x20;  // its name changes: the checksum fails
    });
    write_file_atomic(files[2], bytes);
    std::string rows;
    for (size_t i = 0; i < s.size(); ++i)
      if (i != 10 && i != 24)
        rows += json{{"image_path", data_path("datasets/coco-tiny/val2017/" + s[i].key + ".jpg")},
                     {"caption", s[i].members[1].second}}.dump() + "\n";
    table = dir + "/table.jsonl";
    write_file_atomic(table, rows);
  }
  ~DamagedShards() { fs::remove_all(dir); }
};

TEST(WebDatasetTrainCli, TrainingOnShardsEqualsTrainingOnATableOfTheSameRows) {
  DamagedShards d;
  const std::string common = "train --model " + kDual + " --max-steps 5 --batch-size 8 --lr 1e-3 --no-shuffle"
                             " --no-dropout --save-steps 2 --threads 2 --out ";
  auto w = run_clipkit(common + d.dir + "/wds --data " + d.spec);
  ASSERT_EQ(w.status, 0) << w.err;
  // the damage is counted and the samples skipped
  EXPECT_NE(w.err.find("39 rows, 3 skipped: 2 x sample without an image member"), std::string::npos) << w.err;
  EXPECT_NE(w.err.find("1 x corrupt tar header"), std::string::npos) << w.err;
  EXPECT_NE(w.err.find("no evaluation split (shards hold none; give --eval-data)"), std::string::npos) << w.err;
  auto t = run_clipkit(common + d.dir + "/table --no-eval --data " + d.table);
  ASSERT_EQ(t.status, 0) << t.err;
  expect_same_run(d.dir + "/wds", d.dir + "/table");
  EXPECT_EQ(read_file(d.dir + "/wds/checkpoint-2/optimizer.safetensors"),
            read_file(d.dir + "/table/checkpoint-2/optimizer.safetensors"));
  // frozen towers train on cached features read through the archives: equal too (shuffled)
  const std::string frozen = "train --model " + kDual + " --max-steps 3 --batch-size 8 --lr 1e-3 --freeze-vision"
                             " --freeze-text --threads 2 --out ";
  ASSERT_EQ(run_clipkit(frozen + d.dir + "/fw --data " + d.spec + " --eval-data " + d.spec).status, 0);
  ASSERT_EQ(run_clipkit(frozen + d.dir + "/ft --data " + d.table + " --eval-data " + d.table).status, 0);
  expect_same_run(d.dir + "/fw", d.dir + "/ft");
  // eval reads the shards as its split
  auto ew = run_clipkit("eval --model " + kDual + " --data " + d.spec + " --batch-size 8 --json");
  auto et = run_clipkit("eval --model " + kDual + " --data " + d.table + " --batch-size 8 --json");
  ASSERT_EQ(ew.status, 0) << ew.err;
  ASSERT_EQ(et.status, 0) << et.err;
  EXPECT_EQ(json::parse(ew.out)["images"], 39);
  EXPECT_EQ(json::parse(ew.out), json::parse(et.out));
}

TEST(WebDatasetTrainCli, ShuffledRunsRepeatForASeedAndResumeAtAStep) {
  DamagedShards d;
  // 39 samples in batches of 8: 5 steps an epoch, 2 epochs; the shuffle buffer spans the shards
  const std::string common = "train --model " + kDual + " --data " + d.spec + " --epochs 2 --batch-size 8 --lr 1e-3"
                             " --no-dropout --out ";
  ASSERT_EQ(run_clipkit(common + d.dir + "/a --seed 5 --threads 2").status, 0);
  ASSERT_EQ(run_clipkit(common + d.dir + "/b --seed 5 --threads 2").status, 0);
  expect_same_run(d.dir + "/a", d.dir + "/b");
  ASSERT_EQ(run_clipkit(common + d.dir + "/c --seed 6 --threads 2").status, 0);
  EXPECT_NE(metrics(d.dir + "/a")[0]["loss"], metrics(d.dir + "/c")[0]["loss"]);
  // stopped in the second epoch, resumed from the checkpoint of step 6
  auto r = run_clipkit(common + d.dir + "/r --seed 5 --threads 2 --save-steps 3 --stop-after-steps 7");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(d.dir + "/r/model.safetensors"));
  r = run_clipkit(common + d.dir + "/r --seed 5 --threads 2 --resume");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  expect_same_run(d.dir + "/a", d.dir + "/r");
  // two ranks, each reading its share of every batch from the same stream
  if (!test::have_mpirun()) return;
  ASSERT_EQ(test::run_clipkit_mpi(2, " " + common + d.dir + "/two --seed 5 --threads 1", d.dir + "/two.log"), 0)
      << read_file(d.dir + "/two.log");
  auto m1 = metrics(d.dir + "/a"), m2 = metrics(d.dir + "/two");
  ASSERT_EQ(m1.size(), m2.size());
  for (size_t i = 0; i < m1.size(); ++i) EXPECT_NEAR(m1[i]["loss"].get<double>(), m2[i]["loss"].get<double>(), 1e-4);
}

}  // namespace
}  // namespace clipkit
