// The from-scratch demonstration as a test: generate the captioned-shapes data set, train a
// random clip-tiny (both towers) on it, and check that it learned -- text->image recall@1 on val
// and zero-shot accuracy on held-out images far above chance. Single-threaded so it neither
// competes with parallel ctest jobs nor depends on the core count (~1-2 min on one core).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "image/image.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;
using test::run_clipkit;

TEST(DataShapesCli, DeterministicCocoLayout) {
  const std::string dir = test::temp_dir("shapes_det");
  auto a = run_clipkit("data shapes --out " + dir + "/a --train 20 --val 5 --seed 7 --zeroshot-per-class 1");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out.find("train 20 images / 40 captions, val 5 images / 10 captions, 18 zero-shot images"),
            std::string::npos) << a.out;
  auto b = run_clipkit("data shapes --out " + dir + "/b --train 20 --val 5 --seed 7 --zeroshot-per-class 1");
  ASSERT_EQ(b.status, 0) << b.err;
  for (const char* f : {"annotations/captions_train2017.json", "annotations/captions_val2017.json",
                        "train2017/000000000001.png", "val2017/000010000005.png"})
    EXPECT_EQ(read_file(dir + "/a/" + f), read_file(dir + "/b/" + f)) << f;
  auto c = run_clipkit("data shapes --out " + dir + "/c --train 20 --val 5 --seed 8 --zeroshot-per-class 1");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(read_file(dir + "/a/annotations/captions_train2017.json"),
            read_file(dir + "/c/annotations/captions_train2017.json"));
  // the loader reads it as COCO: 20 images, 40 rows, nothing skipped
  auto chk = run_clipkit("data check --data " + dir + "/a --split train --json");
  ASSERT_EQ(chk.status, 0) << chk.err;
  auto j = nlohmann::json::parse(chk.out);
  EXPECT_EQ(j["rows"], 40);
  EXPECT_EQ(j["unique_images"], 20);
  EXPECT_EQ(j["skipped"], 0);
  EXPECT_TRUE(fs::is_directory(dir + "/a/zeroshot/object/red circle"));
  EXPECT_TRUE(fs::is_directory(dir + "/a/zeroshot/colour/purple"));
  EXPECT_TRUE(fs::is_directory(dir + "/a/zeroshot/shape/triangle"));
  EXPECT_NE(run_clipkit("data shapes --out " + dir + "/d --size 8").status, 0);
  fs::remove_all(dir);
}

double zero_shot(const std::string& model, const std::string& dir, const std::string& tpl) {
  auto r = run_clipkit("classify --model " + model + " --eval " + dir + " --template '" + tpl + "' --json --threads 1");
  EXPECT_EQ(r.status, 0) << r.err;
  if (r.status != 0) return -1;
  return nlohmann::json::parse(r.out)["accuracy"].get<double>();
}

TEST(FromScratchCli, TinyClipLearnsShapes) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = test::temp_dir("from_scratch");
  const std::string data = dir + "/shapes", init = dir + "/init", out = dir + "/trained";
  auto g = run_clipkit("data shapes --out " + data + " --train 1000 --val 200 --seed 1");
  ASSERT_EQ(g.status, 0) << g.err;
  auto i = run_clipkit("init --arch clip-tiny --out " + init + " --seed 0");
  ASSERT_EQ(i.status, 0) << i.err;
  auto t = run_clipkit("train --model " + init + " --data " + data + " --out " + out +
                       " --epochs 12 --batch-size 64 --lr 1e-3 --warmup-steps 50 --lr-scheduler cosine"
                       " --weight-decay 0.1 --no-dropout --no-eval --seed 0 --threads 1");
  ASSERT_EQ(t.status, 0) << t.err;
  auto before = run_clipkit("eval --model " + init + " --data " + data + " --split val --json --threads 1");
  auto after = run_clipkit("eval --model " + out + " --data " + data + " --split val --json --threads 1");
  ASSERT_EQ(before.status, 0) << before.err;
  ASSERT_EQ(after.status, 0) << after.err;
  auto jb = nlohmann::json::parse(before.out), ja = nlohmann::json::parse(after.out);
  const double r1 = ja["t2i_r1"].get<double>(), chance_r1 = 1.0 / ja["images"].get<double>();
  const double obj = zero_shot(out, data + "/zeroshot/object", "a {}");
  const double col = zero_shot(out, data + "/zeroshot/colour", "a {} shape");
  const double shp = zero_shot(out, data + "/zeroshot/shape", "a {}");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("from scratch (clip-tiny, 1000 train images x 2 captions, 12 epochs, 1 thread): %.0f s\n", secs);
  std::printf("  val text->image R@1 %.3f (untrained %.3f, chance %.3f), R@5 %.3f; loss %.3f -> %.3f\n", r1,
              jb["t2i_r1"].get<double>(), chance_r1, ja["t2i_r5"].get<double>(), jb["loss"].get<double>(),
              ja["loss"].get<double>());
  std::printf("  zero-shot on held-out images: colour+shape %.3f (chance %.3f), colour %.3f (chance %.3f), "
              "shape %.3f (chance %.3f)\n", obj, 1.0 / 18, col, 1.0 / 6, shp, 1.0 / 3);
  EXPECT_GT(r1, 20 * chance_r1);
  EXPECT_GT(obj, 0.5);
  EXPECT_GT(col, 0.6);
  EXPECT_GT(shp, 0.7);
  EXPECT_LT(ja["loss"].get<double>(), jb["loss"].get<double>() - 1.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
