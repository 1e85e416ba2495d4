// `clipkit embed --folder/--coco` (shards, resume), `clipkit index build/add/remove/info` and
// `clipkit search --json` end to end on the tiny checkpoints and the coco-tiny dataset.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "test_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;
namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModel = data_path("models/tiny-clip");
const std::string kCoco = data_path("datasets/coco-tiny");

TEST(IndexCli, EmbedShardsResumeToTheSameFiles) {
  auto dir = test::temp_dir("cli_shards");
  const std::string common = "embed --model " + kModel + " --folder " + kCoco + "/val2017 --shard-size 15 --batch-size 4";
  auto full = run_clipkit(common + " --out " + dir + "/full");
  ASSERT_EQ(full.status, 0) << full.err;
  auto part = run_clipkit(common + " --out " + dir + "/part --stop-after-shards 1");
  EXPECT_EQ(part.status, 1);
  EXPECT_NE(part.err.find("run the same command again to resume"), std::string::npos) << part.err;
  auto rest = run_clipkit(common + " --out " + dir + "/part");
  ASSERT_EQ(rest.status, 0) << rest.err;
  EXPECT_NE(rest.err.find("1 already done, 2 written now"), std::string::npos) << rest.err;
  for (const char* f : {"shard-00000.npy", "shard-00001.npy", "shard-00002.npy", "shard-00000.jsonl", "shard-00002.jsonl"})
    EXPECT_EQ(read_file(dir + "/full/" + f), read_file(dir + "/part/" + f)) << f;
  // unreadable files are listed, skipped, exit status 3
  write_file_atomic(dir + "/list.txt", kCoco + "/val2017/000000015466.jpg\n" + data_path("images/bad/truncated.jpg") + "\n");
  auto bad = run_clipkit("embed --model " + kModel + " --image-list " + dir + "/list.txt --shards --out " + dir + "/bad");
  EXPECT_EQ(bad.status, 3) << bad.err;
  EXPECT_NE(bad.err.find("skipped"), std::string::npos);
  EXPECT_NE(bad.err.find("truncated.jpg"), std::string::npos);
  fs::remove_all(dir);
}

TEST(IndexCli, BuildSearchAddRemoveInfo) {
  auto dir = test::temp_dir("cli_index");
  const std::string idx = dir + "/idx";
  auto b = run_clipkit("index build --model " + kModel + " --coco " + kCoco + " --split val --index " + idx);
  ASSERT_EQ(b.status, 0) << b.err;
  auto info = run_clipkit("index info --index " + idx + " --json");
  ASSERT_EQ(info.status, 0) << info.err;
  auto ij = json::parse(info.out);
  EXPECT_EQ(ij["count"], 40);
  EXPECT_EQ(ij["factory"], "IDMap,Flat");
  EXPECT_EQ(ij["dim"], 48);

  // the contract: {"results": [{"rank", "id", "path", "score", ...metadata}]}, best first
  auto s = run_clipkit("search --index " + idx + " --text 'a red circle' -k 5 --json");
  ASSERT_EQ(s.status, 0) << s.err;
  auto sj = json::parse(s.out);
  ASSERT_EQ(sj["results"].size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    auto& h = sj["results"][i];
    EXPECT_EQ(h["rank"], i + 1);
    EXPECT_TRUE(h["id"].is_number_integer());
    EXPECT_TRUE(fs::exists(h["path"].get<std::string>()));
    EXPECT_TRUE(h["score"].is_number());
    EXPECT_EQ(h["split"], "val");
    EXPECT_TRUE(h["caption"].is_string());
    if (i) {
      EXPECT_LE(h["score"].get<double>(), sj["results"][i - 1]["score"].get<double>());
    }
  }
  // an indexed image finds itself
  const std::string first = sj["results"][0]["path"];
  auto im = run_clipkit("search --index " + idx + " --image " + first + " -k 1 --json");
  ASSERT_EQ(im.status, 0) << im.err;
  EXPECT_EQ(json::parse(im.out)["results"][0]["path"], first);
  auto none = run_clipkit("search --index " + idx + " --text x --split train --json");
  EXPECT_TRUE(json::parse(none.out)["results"].empty());

  // add the train split, then remove one image by path and a folder
  auto a = run_clipkit("index add --index " + idx + " --coco " + kCoco + " --split train");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.err.find("added 150 images"), std::string::npos) << a.err;
  auto a2 = run_clipkit("index add --index " + idx + " --coco " + kCoco + " --split train");
  EXPECT_NE(a2.err.find("added 0 images (150 already indexed)"), std::string::npos) << a2.err;
  auto r = run_clipkit("index remove --index " + idx + " --paths " + first);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("removed 1 images; 189 in the index"), std::string::npos) << r.err;
  auto r2 = run_clipkit("index remove --index " + idx + " --under val2017");
  EXPECT_NE(r2.err.find("removed 39 images; 150 in the index"), std::string::npos) << r2.err;
  auto plain = run_clipkit("search --index " + idx + " --text 'a red circle' -k 3");
  EXPECT_EQ(plain.status, 0) << plain.err;
  EXPECT_NE(plain.out.find("train2017"), std::string::npos);
  fs::remove_all(dir);
}

// The image backend is part of what made an index: recorded in index.json, used for image queries,
// and embeddings of the other backend are refused.
TEST(IndexCli, KeepsImageBackendsApart) {
  auto dir = test::temp_dir("cli_index_backend");
  const std::string idx = dir + "/idx";
  auto b = run_clipkit("index build --model " + kModel + " --images " + kCoco + "/val2017 --index " + idx +
                       " --image-backend torchvision");
  ASSERT_EQ(b.status, 0) << b.err;
  auto ij = json::parse(read_file(idx + "/index.json"));
  EXPECT_EQ(ij["model"]["image_backend"], "torchvision");
  // an indexed image finds itself with the same embedding: the query was preprocessed alike
  std::string first;
  for (auto& e : fs::directory_iterator(kCoco + "/val2017"))
    if (first.empty() || e.path().string() < first) first = e.path().string();
  auto im = run_clipkit("search --index " + idx + " --image " + first + " -k 1 --json");
  ASSERT_EQ(im.status, 0) << im.err;
  auto hit = json::parse(im.out)["results"][0];
  EXPECT_EQ(hit["path"], first);
  EXPECT_GT(hit["score"].get<double>(), 1 - 1e-5);
  // Pillow-preprocessed embeddings of the same model are not added to it
  ASSERT_EQ(run_clipkit("embed --model " + kModel + " --folder " + kCoco + "/train2017 --out " + dir + "/emb").status, 0);
  auto add = run_clipkit("index add --index " + idx + " --embeddings " + dir + "/emb");
  EXPECT_EQ(add.status, 1);
  EXPECT_NE(add.err.find("images pil"), std::string::npos) << add.err;
  // index add without the flag embeds as the index was built
  auto add2 = run_clipkit("index add --index " + idx + " --images " + kCoco + "/train2017");
  EXPECT_EQ(add2.status, 0) << add2.err;
  fs::remove_all(dir);
}

TEST(IndexCli, RefusesAnotherModelAndBadInput) {
  auto dir = test::temp_dir("cli_index_model");
  const std::string idx = dir + "/idx";
  ASSERT_EQ(run_clipkit("index build --model " + kModel + " --images " + kCoco + "/val2017 --index " + idx).status, 0);
  auto other = run_clipkit("search --index " + idx + " --model " + data_path("models/tiny-clip-roberta") + " --text x");
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("this index was built with model"), std::string::npos) << other.err;
  // embeddings of another model cannot be added either
  ASSERT_EQ(run_clipkit("embed --model " + data_path("models/tiny-clip-roberta") + " --folder " + kCoco +
                        "/val2017 --out " + dir + "/emb")
                .status,
            0);
  auto add = run_clipkit("index add --index " + idx + " --embeddings " + dir + "/emb");
  EXPECT_EQ(add.status, 1);
  EXPECT_NE(add.err.find("model"), std::string::npos) << add.err;
  auto again = run_clipkit("index build --model " + kModel + " --images " + kCoco + "/val2017 --index " + idx);
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("already holds an index"), std::string::npos);
  auto missing = run_clipkit("search --index " + dir + "/nope --text x");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("not an index folder"), std::string::npos);
  EXPECT_EQ(run_clipkit("search --index " + idx).status, 2);  // no query
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
