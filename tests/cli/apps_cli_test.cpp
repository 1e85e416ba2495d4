// clipkit dedup / classify / video / retrieve: output contracts, known answers, bad inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "apps/synthetic.h"
#include "apps/video_io.h"
#include "cli_util.h"

namespace clipkit::test {
namespace {

namespace fs = std::filesystem;
const std::string kModel = std::string(CLIPKIT_TEST_DATA) + "/models/tiny-clip";
const std::string kImages = std::string(CLIPKIT_TEST_DATA) + "/images";

std::string q(const std::string& s) { return "'" + s + "'"; }

nlohmann::json read_json(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(AppsCli, DedupReportContractAndLeakage) {
  auto dir = temp_dir("apps_dedup");
  fs::remove_all(dir);
  auto set = apps::synthetic::make_dedup_set(dir + "/train", 4, 6, 160, 120, 9);
  fs::create_directories(dir + "/val");
  fs::copy_file(set.files[0], dir + "/val/leaked.jpg");                  // exact copy of a train image
  apps::synthetic::write_jpeg(dir + "/val/fresh.jpg", apps::synthetic::scene(777, 160, 120));
  std::ofstream(dir + "/train/broken.jpg") << "garbage";
  auto r = run_clipkit("dedup --model " + q(kModel) + " --split train=" + q(dir + "/train") + " --split val=" +
                       q(dir + "/val") + " --threshold 0.99 --report " + q(dir + "/report.json") + " --apply");
  EXPECT_EQ(r.status, 3) << r.err;  // finished; one unreadable file skipped
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos);
  auto j = read_json(dir + "/report.json");
  EXPECT_EQ(j["images"], static_cast<int64_t>(set.files.size()) + 2);
  ASSERT_TRUE(j["groups"].is_array());
  ASSERT_GE(j["groups"].size(), 4u);
  for (auto& g : j["groups"]) {
    EXPECT_TRUE(g["kind"] == "exact" || g["kind"] == "near");
    EXPECT_GE(g["members"].size(), 2u);
    EXPECT_TRUE(g["keep"].is_string());
    EXPECT_GE(g["min_similarity"].get<double>(), 0.99 - 1e-9);
  }
  ASSERT_EQ(j["cross_split"].size(), 1u);
  auto& c = j["cross_split"][0];
  bool has_leak = false;
  for (auto& m : c["members"]) has_leak |= m.get<std::string>().find("leaked.jpg") != std::string::npos;
  EXPECT_TRUE(has_leak);
  EXPECT_EQ(c["splits"].size(), c["members"].size());
  // The val copy is kept; the train copies are the suggested removals.
  for (auto& g : j["groups"])
    for (auto& m : g["members"])
      if (m.get<std::string>().find("leaked.jpg") != std::string::npos) {
        EXPECT_EQ(g["keep"], m);
      }
  std::ifstream html(dir + "/report.html");
  std::stringstream hs;
  hs << html.rdbuf();
  EXPECT_NE(hs.str().find("data:image/jpeg;base64,"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "/report.removals.txt"));
  for (auto& f : set.files) EXPECT_TRUE(fs::exists(f)) << "--apply without --move-to must not touch " << f;
}

TEST(AppsCli, DedupMoveToAndBadInputs) {
  auto dir = temp_dir("apps_dedup_move");
  fs::remove_all(dir);
  fs::create_directories(dir + "/imgs/sub");
  fs::copy_file(kImages + "/chelsea.jpg", dir + "/imgs/a.jpg");
  fs::copy_file(kImages + "/chelsea.jpg", dir + "/imgs/sub/b.jpg");
  auto r = run_clipkit("dedup --model " + q(kModel) + " --images " + q(dir + "/imgs") + " --report " +
                       q(dir + "/r.json") + " --no-html --apply --move-to " + q(dir + "/removed"));
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = read_json(dir + "/r.json");
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["kind"], "exact");
  EXPECT_TRUE(fs::exists(dir + "/imgs/a.jpg"));  // kept (first path)
  EXPECT_FALSE(fs::exists(dir + "/imgs/sub/b.jpg"));
  EXPECT_TRUE(fs::exists(dir + "/removed/sub/b.jpg"));  // moved, never deleted
  EXPECT_FALSE(fs::exists(dir + "/r.html"));
  r = run_clipkit("dedup --model " + q(kModel) + " --folder " + q(dir + "/nope") + " --report " + q(dir + "/x.json"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("nope: no such folder"), std::string::npos) << r.err;
  r = run_clipkit("dedup --model " + q(kModel) + " --split train --report " + q(dir + "/x.json"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("expected NAME=DIR"), std::string::npos) << r.err;
  r = run_clipkit("dedup --model " + q(kModel) + " --images " + q(dir) + " --threshold 3 --report x.json");
  EXPECT_EQ(r.status, 2);
  r = run_clipkit("dedup --model " + q(kModel) + " --report x.json");
  EXPECT_EQ(r.status, 2);  // no input
}

std::set<std::set<std::string>> group_names(const nlohmann::json& report) {
  std::set<std::set<std::string>> out;
  for (auto& g : report["groups"]) {
    std::set<std::string> names;
    for (auto& m : g["members"]) names.insert(fs::path(m.get<std::string>()).filename().string());
    out.insert(names);
  }
  return out;
}

// dedup --index reads the index's stored vectors: the same groups as scanning the folder, no
// model run; --apply --move-to moves the removals out of the folder and out of the index.
TEST(AppsCli, DedupFromAnIndexMatchesTheFolderScan) {
  auto dir = temp_dir("apps_dedup_index");
  fs::remove_all(dir);
  auto set = apps::synthetic::make_dedup_set(dir + "/imgs", 3, 6, 160, 120, 5);
  auto r = run_clipkit("index build --model " + q(kModel) + " --images " + q(dir + "/imgs") + " --index " + q(dir + "/idx"));
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_clipkit("dedup --model " + q(kModel) + " --images " + q(dir + "/imgs") + " --threshold 0.99 --no-html --report " +
                  q(dir + "/a.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_clipkit("dedup --index " + q(dir + "/idx") + " --threshold 0.99 --report " + q(dir + "/b.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  auto a = read_json(dir + "/a.json"), b = read_json(dir + "/b.json");
  EXPECT_EQ(b["images"], static_cast<int64_t>(set.files.size()));
  ASSERT_GE(b["groups"].size(), 3u);
  EXPECT_EQ(group_names(a), group_names(b));
  EXPECT_TRUE(fs::exists(dir + "/b.html"));
  // another model's index is refused
  r = run_clipkit("dedup --model " + q(std::string(CLIPKIT_TEST_DATA) + "/models/tiny-clip-roberta") + " --index " +
                  q(dir + "/idx") + " --report " + q(dir + "/c.json"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("this index was built with model"), std::string::npos) << r.err;
  r = run_clipkit("dedup --index " + q(dir + "/idx") + " --images " + q(dir + "/imgs") + " --report " + q(dir + "/c.json"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--index cannot be combined"), std::string::npos) << r.err;
  r = run_clipkit("dedup --images " + q(dir + "/imgs") + " --report " + q(dir + "/c.json"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--model is required"), std::string::npos) << r.err;
  // move the suggested removals out: files moved (never deleted), index shrinks by as many
  const int64_t removals = b["summary"]["suggested_removals"];
  ASSERT_GT(removals, 0);
  r = run_clipkit("dedup --index " + q(dir + "/idx") + " --threshold 0.99 --no-html --report " + q(dir + "/d.json") +
                  " --apply --move-to " + q(dir + "/removed"));
  ASSERT_EQ(r.status, 0) << r.err;
  int64_t moved = 0;
  for (auto& e : fs::recursive_directory_iterator(dir + "/removed")) moved += e.is_regular_file();
  EXPECT_EQ(moved, removals);
  r = run_clipkit("index info --index " + q(dir + "/idx") + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["count"].get<int64_t>(), static_cast<int64_t>(set.files.size()) - removals);
}

TEST(AppsCli, ClassifyJsonContractAndCsv) {
  auto r = run_clipkit("classify --model " + q(kModel) + " --labels 'cat,rocket,cup of coffee' --template 'a photo of a {}.'"
                       " --template 'a drawing of a {}.' --json " + q(kImages + "/chelsea.jpg") + " " +
                       q(kImages + "/rocket.jpg"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    ++n;
    EXPECT_TRUE(j["path"].is_string());
    double sum = 0;
    for (auto& [k, v] : j["scores"].items()) sum += v.get<double>();
    EXPECT_NEAR(sum, 1.0, 1e-6);
    EXPECT_EQ(j["scores"].size(), 3u);
    ASSERT_EQ(j["labels"].size(), 1u);
    EXPECT_TRUE(j["scores"].contains(j["labels"][0].get<std::string>()));
  }
  EXPECT_EQ(n, 2);
  r = run_clipkit("classify --model " + q(kModel) + " --labels 'cat,dog' " + q(kImages + "/chelsea.jpg"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "path,cat,dog,labels");
  // multi-label: thresholds 0 and 1 select everything / nothing
  r = run_clipkit("classify --model " + q(kModel) + " --labels 'cat,dog' --multi-label --threshold 0 --json " +
                  q(kImages + "/chelsea.jpg"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["labels"].size(), 2u);
  r = run_clipkit("classify --model " + q(kModel) + " --labels 'cat,dog' --multi-label --threshold 1 --json " +
                  q(kImages + "/chelsea.jpg"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["labels"].size(), 0u);
}

TEST(AppsCli, ClassifyEvalAndBadInputs) {
  auto dir = temp_dir("apps_classify_eval");
  fs::remove_all(dir);
  for (std::string c : {"red", "green"}) {
    fs::create_directories(dir + "/" + c);
    for (int i = 0; i < 3; ++i)
      apps::synthetic::write_jpeg(dir + "/" + c + "/" + std::to_string(i) + ".jpg",
                                  apps::synthetic::solid(48, 48, c == "red" ? 220 : 20, c == "red" ? 20 : 200, 30, i + 1));
  }
  auto r = run_clipkit("classify --model " + q(kModel) + " --eval " + q(dir) + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"], 6);
  EXPECT_EQ(j["classes"].size(), 2u);
  EXPECT_NEAR(j["accuracy"].get<double>(), j["correct"].get<double>() / 6, 1e-12);
  r = run_clipkit("classify --model " + q(kModel) + " --eval " + q(dir));
  EXPECT_NE(r.out.find("accuracy"), std::string::npos);
  r = run_clipkit("classify --model " + q(kModel) + " " + q(kImages + "/chelsea.jpg"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no labels"), std::string::npos) << r.err;
  r = run_clipkit("classify --model " + q(kModel) + " --labels a,b --template 'no slot' " + q(kImages + "/chelsea.jpg"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("has no {}"), std::string::npos) << r.err;
  r = run_clipkit("classify --model " + q(kModel) + " --labels a,b " + q(kImages + "/chelsea.jpg") + " " +
                  q(kImages + "/bad/empty.jpg") + " --json");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  r = run_clipkit("classify --model " + q(kModel) + " --labels a,b --label-threshold a=0.3 " + q(kImages + "/chelsea.jpg"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--multi-label"), std::string::npos);
}

std::string make_video(const std::string& path) {
  apps::VideoWriter w(path, 64, 48, 10);
  const uint8_t col[3][3] = {{210, 30, 30}, {30, 190, 40}, {30, 40, 200}};
  for (int f = 0; f < 60; ++f) w.write(apps::synthetic::solid(64, 48, col[f / 20][0], col[f / 20][1], col[f / 20][2], f + 1));
  w.close();
  return path;
}

TEST(AppsCli, VideoJsonContract) {
  auto dir = temp_dir("apps_video");
  auto v = make_video(dir + "/v.mp4");
  auto r = run_clipkit("video --model " + q(kModel) + " " + q(v) +
                       " --labels 'violence,something else' --query 'a green field' --every 0.5 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["duration"].get<double>(), 6.0, 0.11);
  ASSERT_EQ(j["frames"].size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_NEAR(j["frames"][i]["t"].get<double>(), 0.5 * double(i), 1e-3);
    EXPECT_NEAR(j["frames"][i]["scores"]["violence"].get<double>() + j["frames"][i]["scores"]["something else"].get<double>(),
                1.0, 1e-6);
  }
  ASSERT_GE(j["segments"].size(), 1u);
  EXPECT_EQ(j["segments"][0]["start"], 0.0);
  for (auto& s : j["segments"]) {
    EXPECT_TRUE(s["label"] == "violence" || s["label"] == "something else");
    EXPECT_TRUE(s["end"].get<double>() > s["start"].get<double>());
    EXPECT_TRUE(s["score"].is_number());
  }
  ASSERT_EQ(j["matches"].size(), 5u);
  for (size_t i = 1; i < 5; ++i) EXPECT_GE(j["matches"][i - 1]["score"].get<double>(), j["matches"][i]["score"].get<double>());
  // --scenes: the two cuts at 2 s and 4 s
  r = run_clipkit("video --model " + q(kModel) + " " + q(v) + " --labels a,b --scenes --json");
  ASSERT_EQ(r.status, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["scene_cuts"].size(), 2u);
  EXPECT_NEAR(j["scene_cuts"][0].get<double>(), 2.0, 0.101);
  EXPECT_NEAR(j["scene_cuts"][1].get<double>(), 4.0, 0.101);
  EXPECT_EQ(j["frames"].size(), 3u);
}

// video --index: the sampled frames become searchable moments (video + timestamp in the index).
TEST(AppsCli, VideoFramesIntoAnIndex) {
  auto dir = temp_dir("apps_video_index");
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto v = make_video(dir + "/v.mp4");
  auto r = run_clipkit("video --model " + q(kModel) + " " + q(v) + " --every 1 --index " + q(dir + "/idx") + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("added 6 of 6 frames"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["frames"].size(), 6u);
  r = run_clipkit("search --index " + q(dir + "/idx") + " --text 'a green field' -k 10 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 6u);
  std::set<double> ts;
  for (auto& h : j["results"]) {
    EXPECT_EQ(fs::path(h["video"].get<std::string>()).filename(), "v.mp4");
    ts.insert(h["timestamp"].get<double>());
    EXPECT_TRUE(fs::exists(h["path"].get<std::string>()));  // the frame JPEG, served by /v1/images/{id}
  }
  EXPECT_EQ(ts, (std::set<double>{0, 1, 2, 3, 4, 5}));
  // the same video again adds nothing; frames go where --frames-dir says
  r = run_clipkit("video --model " + q(kModel) + " " + q(v) + " --every 1 --index " + q(dir + "/idx") +
                  " --frames-dir " + q(dir + "/frames2"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("added 6 of 6 frames"), std::string::npos) << r.err;  // new paths: new records
  EXPECT_TRUE(fs::exists(dir + "/frames2/t000002.000.jpg"));
  r = run_clipkit("video --model " + q(kModel) + " " + q(v) + " --every 1 --index " + q(dir + "/idx") +
                  " --frames-dir " + q(dir + "/frames2"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("added 0 of 6 frames"), std::string::npos) << r.err;
  r = run_clipkit("video --model " + q(kModel) + " " + q(v) + " --labels a --frames-dir " + q(dir + "/x"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--frames-dir needs --index"), std::string::npos) << r.err;
  r = run_clipkit("video --model " + q(std::string(CLIPKIT_TEST_DATA) + "/models/tiny-clip-roberta") + " " + q(v) +
                  " --index " + q(dir + "/idx"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("this index was built with model"), std::string::npos) << r.err;
}

TEST(AppsCli, VideoBadInputs) {
  auto dir = temp_dir("apps_video_bad");
  std::ofstream(dir + "/fake.mp4") << "not a video";
  auto r = run_clipkit("video --model " + q(kModel) + " " + q(dir + "/fake.mp4") + " --labels a,b");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("fake.mp4: not a video file FFmpeg can read"), std::string::npos) << r.err;
  r = run_clipkit("video --model " + q(kModel) + " " + q(dir + "/missing.mkv") + " --labels a,b");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing.mkv: no such file"), std::string::npos) << r.err;
  r = run_clipkit("video --model " + q(kModel) + " " + q(dir + "/fake.mp4"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nothing to do"), std::string::npos) << r.err;
  r = run_clipkit("video --model " + q(kModel) + " " + q(dir + "/fake.mp4") + " --labels a --every 1 --scenes");
  EXPECT_EQ(r.status, 2);
}

TEST(AppsCli, RetrieveFromEmbeddings) {
  auto dir = temp_dir("apps_retrieve");
  auto r = run_clipkit("embed --model " + q(kModel) + " --images " + q(kImages + "/chelsea.jpg") + " " +
                       q(kImages + "/rocket.jpg") + " " + q(kImages + "/coffee.png") + " --out " + q(dir + "/e.npy"));
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_clipkit("retrieve --model " + q(kModel) + " --embeddings " + q(dir + "/e.npy") +
                  " --query 'a cat' --k 2 --thumbnails --thumb-size 64");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["query"], "a cat");
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_GE(j["results"][0]["score"].get<double>(), j["results"][1]["score"].get<double>());
  EXPECT_EQ(j["results"][0]["image"].get<std::string>().rfind("data:image/jpeg;base64,", 0), 0u);
  r = run_clipkit("retrieve --model " + q(kModel) + " --embeddings " + q(dir + "/e.npy") +
                  " --query-image " + q(kImages + "/rocket.jpg") + " --k 1 --filter 'path~rocket'");
  ASSERT_EQ(r.status, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_NEAR(j["results"][0]["score"].get<double>(), 1.0, 1e-4);
  r = run_clipkit("retrieve --model " + q(kModel) + " --images " + q(kImages + "/bad") + " --query x --filter nonsense");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("filter \"nonsense\""), std::string::npos) << r.err;
}

TEST(AppsCli, RetrieveFromIndex) {
  auto dir = temp_dir("apps_retrieve_index");
  fs::remove_all(dir);
  fs::create_directories(dir + "/imgs");
  for (const char* f : {"chelsea.jpg", "rocket.jpg", "coffee.png"}) fs::copy_file(kImages + "/" + f, dir + "/imgs/" + f);
  auto r = run_clipkit("index build --model " + q(kModel) + " --images " + q(dir + "/imgs") + " --index " + q(dir + "/idx"));
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_clipkit("retrieve --model " + q(kModel) + " --index " + q(dir + "/idx") + " --query-image " +
                  q(dir + "/imgs/coffee.png") + " --k 3 --filter 'width>=0'");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][0]["path"].get<std::string>().substr(j["results"][0]["path"].get<std::string>().size() - 10),
            "coffee.png");
  EXPECT_NEAR(j["results"][0]["score"].get<double>(), 1.0, 1e-4);
  EXPECT_TRUE(j["results"][0]["metadata"].contains("width"));
}

}  // namespace
}  // namespace clipkit::test
