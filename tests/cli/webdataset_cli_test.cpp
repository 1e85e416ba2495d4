// WebDataset shards end to end: `data check`, `embed --data` (equal to embedding the same files as a
// folder), `mpirun -np 3 clipkit embed` equal to one process, a rank killed mid-run and the run
// resumed, per-rank index builds merged, dedup over shards.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli_util.h"
#include "dataset/caption_dataset.h"
#include "io/atomic_file.h"
#include "shard_util.h"
#include "test_util.h"
#include "train_cli_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;
namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModel = data_path("models/tiny-clip");
const std::string kVal = data_path("datasets/coco-tiny/val2017");

void expect_same_folder(const std::string& a, const std::string& b) {
  auto ma = json::parse(read_file(a + "/manifest.json")), mb = json::parse(read_file(b + "/manifest.json"));
  EXPECT_EQ(ma["shards"], mb["shards"]);
  EXPECT_TRUE(mb["complete"].get<bool>());
  for (auto& s : ma["shards"])
    for (const char* k : {"npy", "jsonl"}) {
      const std::string f = s[k].get<std::string>();
      EXPECT_EQ(read_file(a + "/" + f), read_file(b + "/" + f)) << f;
    }
  for (auto& e : fs::directory_iterator(b)) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n.find(".tmp.") == std::string::npos && !n.starts_with("manifest.rank-")) << n;
  }
}

TEST(WebDatasetCli, DataCheckCountsDamage) {
  auto dir = test::temp_dir("wds_check");
  auto s = test::coco_val_samples();
  s.resize(12);
  s.push_back({"no-image", {{"txt", "a caption alone"}}});
  auto files = test::write_shards(dir, s, 5);  // 00000..00002
  std::string bytes = read_file(files[1]);
  write_file_atomic(files[1], bytes.substr(0, bytes.size() / 2));  // truncated
  auto r = run_clipkit("data check --data " + test::shard_spec(dir, 3) + " --json");
  EXPECT_EQ(r.status, 3) << r.err;
  auto j = json::parse(r.out);
  EXPECT_GE(j["rows"].get<int>(), 7);
  EXPECT_LT(j["rows"].get<int>(), 12);
  std::set<std::string> kinds;
  for (auto& p : j["problems"]) kinds.insert(p["kind"].get<std::string>());
  EXPECT_TRUE(kinds.count("truncated")) << r.out;
  EXPECT_TRUE(kinds.count("no_image")) << r.out;
  EXPECT_NE(r.err.find("00001.tar"), std::string::npos) << r.err;
  // captions from a .json field
  auto js = run_clipkit("data check --data '" + dir + "/00000.tar' --caption-key caption --show 1 --json");
  EXPECT_EQ(js.status, 0) << js.err;
  EXPECT_EQ(json::parse(js.out)["rows"].get<int>(), 5);
  fs::remove_all(dir);
}

TEST(WebDatasetCli, EmbeddingShardsEqualsEmbeddingTheFolder) {
  auto dir = test::temp_dir("wds_embed");
  test::write_shards(dir + "/shards", test::coco_val_samples(), 16);  // 3 shards
  const std::string common = " --model " + kModel + " --shard-size 15 --batch-size 4 --threads 1";
  auto f = run_clipkit("embed --folder " + kVal + common + " --out " + dir + "/folder");
  ASSERT_EQ(f.status, 0) << f.err;
  auto w = run_clipkit("embed --data '" + dir + "/shards/*.tar'" + common + " --out " + dir + "/wds");
  ASSERT_EQ(w.status, 0) << w.err;
  for (const char* n : {"shard-00000.npy", "shard-00001.npy", "shard-00002.npy"})
    EXPECT_EQ(read_file(dir + "/folder/" + n), read_file(dir + "/wds/" + n)) << n;
  std::string first = read_file(dir + "/wds/shard-00000.jsonl");
  auto row = json::parse(first.substr(0, first.find('\n')));
  EXPECT_EQ(row["relpath"], "00000.tar/000000014850.jpg");
  EXPECT_EQ(row["key"], "000000014850");
  EXPECT_FALSE(row["caption"].get<std::string>().empty());
  EXPECT_EQ(row["json"]["url"], "http://x/000000014850.jpg");
  EXPECT_EQ(row["content_hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(row["bytes"].get<int64_t>(), static_cast<int64_t>(fs::file_size(kVal + "/000000014850.jpg")));
  fs::remove_all(dir);
}

TEST(WebDatasetCli, MpirunEmbedEqualsOneProcessAndSurvivesAKilledRank) {
  if (!test::have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  auto dir = test::temp_dir("wds_mpi");
  auto s = test::coco_val_samples();
  s.insert(s.begin() + 17, {"corrupt", {{"jpg", "this is not a JPEG"}, {"txt", "broken"}}});
  test::write_shards(dir + "/shards", s, 10);  // 41 samples, 5 shards
  const std::string args = " embed --model " + kModel + " --data " + test::shard_spec(dir + "/shards", 5) +
                           " --shard-size 7 --batch-size 4 --threads 1";
  auto one = run_clipkit(args + " --out " + dir + "/one");
  ASSERT_EQ(one.status, 3) << one.err;  // the corrupt image is listed and skipped
  EXPECT_NE(one.err.find("41 images -> 40 rows in 6 shards"), std::string::npos) << one.err;
  ASSERT_EQ(test::run_clipkit_mpi(3, args + " --out " + dir + "/three", dir + "/three.log"), 256 * 3)
      << read_file(dir + "/three.log");
  EXPECT_NE(read_file(dir + "/three.log").find("(3 ranks)"), std::string::npos) << read_file(dir + "/three.log");
  expect_same_folder(dir + "/one", dir + "/three");

  // rank 1 killed (SIGKILL) in the middle of its second shard; mpirun ends the others
  EXPECT_NE(test::run_clipkit_mpi(3, args + " --out " + dir + "/killed --kill-rank 1 --kill-after-batches 3",
                                  dir + "/killed.log"),
            0);
  EXPECT_TRUE(fs::exists(dir + "/killed/shard-00001.npy")) << read_file(dir + "/killed.log");  // rank 1's first
  EXPECT_FALSE(fs::exists(dir + "/killed/manifest.json"));
  ASSERT_EQ(test::run_clipkit_mpi(3, args + " --out " + dir + "/killed", dir + "/rerun.log"), 256 * 3)
      << read_file(dir + "/rerun.log");
  const std::string rerun = read_file(dir + "/rerun.log");
  EXPECT_EQ(rerun.find(" 0 already done"), std::string::npos) << rerun;
  expect_same_folder(dir + "/one", dir + "/killed");
  fs::remove_all(dir);
}

TEST(WebDatasetCli, PerRankIndexBuildsMergeToTheOneProcessIndex) {
  if (!test::have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  auto dir = test::temp_dir("wds_index");
  test::write_shards(dir + "/shards", test::coco_val_samples(), 10);
  auto e = run_clipkit("embed --model " + kModel + " --data " + test::shard_spec(dir + "/shards", 4) + " --shard-size 9 --out " +
                       dir + "/emb");
  ASSERT_EQ(e.status, 0) << e.err;
  const std::string args = " index build --model " + kModel + " --embeddings " + dir +
                           "/emb --factory IVF4,Flat --part-rows 9 --heldout 10 --threads 1 --index ";
  auto one = run_clipkit(args + dir + "/one");
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_NE(one.out.find("recall@10"), std::string::npos) << one.out;
  ASSERT_EQ(test::run_clipkit_mpi(3, args + dir + "/three", dir + "/three.log"), 0) << read_file(dir + "/three.log");
  auto a = json::parse(run_clipkit("index info --json --index " + dir + "/one").out);
  auto b = json::parse(run_clipkit("index info --json --index " + dir + "/three").out);
  EXPECT_EQ(a["count"], 40);
  EXPECT_EQ(b["count"], 40);
  EXPECT_EQ(a["build"]["parts"], 5);
  EXPECT_EQ(read_file(dir + "/one/index.faiss"), read_file(dir + "/three/index.faiss"));
  for (const char* q : {"'a red circle'", "'a dog on a beach'", "'two people'"}) {
    auto sa = run_clipkit("search --index " + dir + "/one --text " + q + " -k 8 --json");
    auto sb = run_clipkit("search --index " + dir + "/three --text " + q + " -k 8 --json");
    ASSERT_EQ(sa.status, 0) << sa.err;
    EXPECT_EQ(sa.out, sb.out);
  }
  fs::remove_all(dir);
}

TEST(WebDatasetCli, DedupFindsCopiesInsideShardsAndThroughTheirIndex) {
  auto dir = test::temp_dir("wds_dedup");
  auto s = test::coco_val_samples();
  s.resize(20);
  s.push_back({"copy-of-3", s[3].members});  // byte-identical image under another key
  test::write_shards(dir + "/shards", s, 8);
  // the tiny random model puts many different images close together: only identical bytes are this close
  const std::string thr = " --threshold 0.99999";
  auto r = run_clipkit("dedup --model " + kModel + " --data '" + dir + "/shards/*.tar' --report " + dir +
                       "/report.json --no-html" + thr);
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = json::parse(read_file(dir + "/report.json"));
  ASSERT_GE(j["summary"]["exact_groups"].get<int>(), 1) << j.dump(1);
  bool found = false;
  for (auto& g : j["groups"])
    if (g["kind"] == "exact") {
      std::set<std::string> m(g["members"].begin(), g["members"].end());
      found |= m.count(dir + "/shards/00002.tar/copy-of-3.jpg") && m.count(dir + "/shards/00000.tar/" + s[3].key + ".jpg");
    }
  EXPECT_TRUE(found) << j.dump(1);
  EXPECT_NE(run_clipkit("dedup --model " + kModel + " --data '" + dir + "/shards/*.tar' --report " + dir +
                        "/r2.json --apply --move-to " + dir + "/moved")
                .status,
            0);  // members cannot be moved out of a .tar
  // the same through an index built from the shards (bounded-memory path)
  ASSERT_EQ(run_clipkit("index build --model " + kModel + " --data '" + dir + "/shards/*.tar' --index " + dir + "/idx").status, 0);
  auto d = run_clipkit("dedup --index " + dir + "/idx --report " + dir + "/idx.json --no-html" + thr);
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_NE(d.err.find("equal content hashes"), std::string::npos) << d.err;
  auto k = json::parse(read_file(dir + "/idx.json"));
  EXPECT_EQ(k["images"], 21);
  EXPECT_EQ(k["groups"], j["groups"]);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
