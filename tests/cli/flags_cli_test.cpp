// The CLI's one flag vocabulary (tools/clipkit/flags.h): bad values refused at parse time with one
// clear line and exit 2 within a second; the same flag names and shown defaults on every
// subcommand (walking `clipkit SUB --help`); the old spellings still working; --json on every
// command that produces a result; models named by hub id through a fake Hugging Face cache.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "apps/synthetic.h"
#include "apps/video_io.h"
#include "cli_util.h"
#include "io/atomic_file.h"
#include "test_util.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::data_path;
using test::run_clipkit;

const std::string kModel = data_path("models/tiny-clip");
const std::string kDual = data_path("models/tiny-clip-roberta");
const std::string kCoco = data_path("datasets/coco-tiny");
const std::string kImage = data_path("images/chelsea.jpg");

struct Case {
  std::string args, message;
};

// Every validation case of issue 18: exit 2, the message on one line, no work done (< 1 s).
TEST(FlagsCli, BadValuesAreRefusedAtOnceWithOneLine) {
  const std::string dir = test::temp_dir("flags_bad");
  const std::vector<Case> cases = {
      {"eval --model " + kDual + " --data " + kCoco + " --batch-size 0", "--batch-size must be ≥ 1, got 0"},
      {"eval --model " + kDual + " --data " + kCoco + " --batch-size -1", "--batch-size must be ≥ 1, got -1"},
      {"embed --model " + kModel + " --text hi --out " + dir + "/x.npy --batch-size 0", "--batch-size must be ≥ 1, got 0"},
      {"index build --model " + kModel + " --folder " + kCoco + "/val2017 --index " + dir + "/i --batch-size 0",
       "--batch-size must be ≥ 1, got 0"},
      {"embed --model " + kModel + " --text hi --out " + dir + "/x.npy --threads -3",
       "--threads must be between 0 and 4096, got -3"},
      {"search --index " + dir + "/nowhere --text ''", "--text must not be empty"},
      {"search --index " + dir + "/nowhere --text '  '", "--text must not be empty"},
      {"embed --model " + kModel + " --images " + kCoco + "/val2017 --out " + dir + "/x.npy",
       "--images takes image files; " + kCoco + "/val2017 is a folder (use --folder " + kCoco + "/val2017)"},
      {"train --model " + kDual + " --data " + kCoco + " --out " + dir + "/t --epochs -1", "--epochs must be ≥ 0, got -1"},
      {"train --model " + kDual + " --data " + kCoco + " --out " + dir + "/t --lr -0.1", "--lr must be ≥ 0, got -0.1"},
      {"search --index " + dir + "/nowhere --text cat -k 0", "--k must be between 1 and 100000, got 0"},
      {"search --index " + dir + "/nowhere --text cat --image " + kImage, "give --text or --image, not both"},
      {"search --index " + dir + "/nowhere", "give --text TEXT or --image FILE"},
      {"search --index " + dir + "/nowhere --image " + dir + "/missing.jpg", "--image " + dir + "/missing.jpg: no such file"},
      {"embed --model " + kModel + " --text hi --out " + dir + "/x.npy --precision fp16",
       "--precision must be fp32, bf16 or int8, got \"fp16\""},
      {"video --model " + kModel + " x.mp4 --labels a --scene-threshold 1.5", "--scene-threshold must be in (0, 1), got 1.5"},
      {"serve --index " + dir + "/nowhere --port 70000", "--port must be between 0 and 65535, got 70000"},
      {"dedup --folder " + kCoco + "/val2017 --report " + dir + "/r.json", "--model is required (except with --index)"},
      {"embed --model " + kModel + " --text hi --texts f.txt --out " + dir + "/x.npy",
       "give only one of --pixels, --images, --image-list, --text, --texts, --folder, --coco or --data (got --text and --texts)"},
      {"index info", "--index is required"},
      {"data shapes --out " + dir + "/s --size 8", "--size must be between 16 and 1024, got 8"},
  };
  for (const auto& c : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_clipkit(c.args);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\nwant: " << c.message << "\ngot: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_LT(r.err.size(), 300u) << r.err;  // no 300-digit ranges
    EXPECT_LT(secs, 1.0) << c.args;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_FALSE(fs::exists(dir + "/x.npy"));
  EXPECT_FALSE(fs::exists(dir + "/t"));
  // CLI11's own errors are one line too, naming the command
  auto r = run_clipkit("search --nonsense");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("clipkit search: error:"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  fs::remove_all(dir);
}

// The subcommands (and their own subcommands) as `clipkit --help` lists them.
std::vector<std::string> list_commands(const std::string& help) {
  std::vector<std::string> out;
  std::istringstream in(help);
  std::string line;
  bool in_subs = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_subs = true;
      continue;
    }
    std::smatch m;
    if (in_subs && std::regex_search(line, m, std::regex("^  ([a-z-]+)\\s"))) out.push_back(m[1]);
  }
  return out;
}

std::string help_of(const std::string& cmd) {
  auto r = run_clipkit(cmd + " --help");
  EXPECT_EQ(r.status, 0) << cmd;
  return r.out;
}

// Walks `clipkit SUB --help` for every subcommand: the shared concepts have one spelling and one
// shown default everywhere, every numeric option shows its default, old spellings stay hidden.
TEST(FlagsCli, HelpOfEverySubcommandSharesTheVocabulary) {
  std::vector<std::string> cmds;
  for (auto& c : list_commands(help_of(""))) {
    const auto subs = list_commands(help_of(c));
    if (subs.empty()) cmds.push_back(c);
    for (auto& s : subs) cmds.push_back(c + " " + s);
  }
  ASSERT_GE(cmds.size(), 20u);
  // command -> the shared flags it must show, spelled and defaulted the one way
  const std::string model = "--model TEXT", json_flag = "--json", threads = "--threads INT=0",
                    batch = "--batch-size INT=32", precision = "--precision TEXT=fp32", k = "-k,--k INT=";
  std::map<std::string, std::vector<std::string>> want = {
      {"bench embed", {model, threads, batch, precision, json_flag, "--folder TEXT"}},
      {"bench parity", {model, threads, batch, precision, "--inputs TEXT", "--out TEXT", "--grads"}},
      {"bench train", {model, threads, batch, json_flag, "--precision TEXT=fp32,bf16", "--padding TEXT=128,dynamic",
                       "--steps INT=2", "--warmup INT=1", "--device"}},
      {"classify", {model, threads, batch, precision, json_flag, "--images TEXT ...", "--folder TEXT"}},
      {"compare", {model, threads, batch, precision, json_flag, "--images TEXT ..."}},
      {"compose", {"--vision-model TEXT", "--text-model TEXT", json_flag}},
      {"convert open-clip", {"--out TEXT", json_flag}},
      {"data check", {json_flag, "--folder TEXT"}},
      {"data shapes", {json_flag, "--train INT=2000", "--size INT=64"}},
      {"dedup", {model, threads, batch, precision, json_flag, "--images TEXT ...", "--folder TEXT", "--threshold FLOAT=0.95"}},
      {"embed", {model, threads, batch, precision, json_flag, "--images TEXT ...", "--folder TEXT"}},
      {"eval", {model, threads, "--batch-size INT=8", precision, json_flag}},
      {"index add", {model, threads, batch, precision, json_flag, "--images TEXT ...", "--folder TEXT"}},
      {"index build", {model, threads, batch, precision, json_flag, "--images TEXT ...", "--folder TEXT"}},
      {"index info", {json_flag, "--index TEXT"}},
      {"index remove", {json_flag}},
      {"info", {model, json_flag}},
      {"init", {json_flag, "--arch TEXT=clip-vit-base-patch32"}},
      {"preprocess", {model, threads, json_flag, "--images TEXT ..."}},
      {"retrieve", {model, threads, batch, precision, json_flag, k + "5", "--text TEXT", "--image TEXT", "--folder TEXT"}},
      {"search", {model, threads, batch, precision, json_flag, k + "10", "--text TEXT", "--image TEXT"}},
      {"serve", {model, threads, precision, "--port INT=8080", "--host TEXT=127.0.0.1"}},
      {"tokenize", {model, threads, "--texts TEXT"}},
      {"train", {model, threads, "--batch-size INT=8", precision, json_flag, "--epochs INT=3", "--lr FLOAT=5e-05"}},
      {"video", {model, threads, batch, precision, json_flag, k + "5", "--text TEXT", "--image TEXT",
                 "--scene-threshold FLOAT=0.05"}},
  };
  for (auto& c : cmds) {
    SCOPED_TRACE(c);
    const std::string h = help_of(c);
    auto it = want.find(c);
    ASSERT_NE(it, want.end()) << "a new subcommand: add it to this table";
    for (auto& w : it->second) EXPECT_NE(h.find(w), std::string::npos) << "missing \"" << w << "\" in\n" << h;
    EXPECT_EQ(h.find("=[]"), std::string::npos) << "an empty list shown as a default in\n" << h;
    // old spellings are hidden aliases, never shown
    for (const char* old : {"--top-k", "--query ", "--query-image", "--file ", "--vision "})
      EXPECT_EQ(h.find(old), std::string::npos) << old << " shown in\n" << h;
    // every numeric option (but lists, like --ids) shows its default
    std::istringstream in(h);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, std::regex("^\\s+(-[-\\w,]+) (INT|UINT|FLOAT)(\\S*)( \\.\\.\\.)?")) && !m[4].matched) {
        EXPECT_EQ(m[3].str().rfind("=", 0), 0u) << "no default shown: " << line;
      }
    }
  }
}

// The old spellings named elsewhere keep working: search -k/--k, retrieve --query/--query-image
// --k, video --top-k --query, index build --images DIR, dedup --images DIR, info MODEL positional,
// index info DIR positional, compose --vision/--text, tokenize --file.
TEST(FlagsCli, OldSpellingsStillWork) {
  const std::string dir = test::temp_dir("flags_alias");
  auto r = run_clipkit("index build --model " + kModel + " --images " + kCoco + "/val2017 --index " + dir + "/idx");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* kflag : {"-k 3", "--k 3", "-k3"}) {
    r = run_clipkit("search --index " + dir + "/idx --text 'a red circle' --json " + kflag);
    ASSERT_EQ(r.status, 0) << kflag << r.err;
    EXPECT_EQ(json::parse(r.out)["results"].size(), 3u) << kflag;
  }
  // retrieve: the model from the index; --query/--query-image and --k as before
  r = run_clipkit("retrieve --index " + dir + "/idx --query 'a red circle' --k 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["results"].size(), 2u);
  r = run_clipkit("retrieve --index " + dir + "/idx --query-image " + kImage + " -k 4");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["results"].size(), 4u);
  r = run_clipkit("retrieve --model " + kModel + " --images " + kCoco + "/val2017 --text 'a red circle' -k 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["results"].size(), 2u);
  // dedup --images DIR (a folder: the old spelling of --folder)
  r = run_clipkit("dedup --model " + kModel + " --images " + kCoco + "/val2017 --report " + dir + "/d.json --json --no-html");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["images"], 40);
  // positional forms
  r = run_clipkit("info " + kModel + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["model_type"], "clip");
  EXPECT_EQ(run_clipkit("info --model " + kModel).status, 0);
  EXPECT_EQ(run_clipkit("index info " + dir + "/idx").status, 0);
  // tokenize --file
  write_file_atomic(dir + "/t.txt", "a cat\n");
  r = run_clipkit("tokenize --model " + kModel + " --file " + dir + "/t.txt");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, run_clipkit("tokenize --model " + kModel + " --texts " + dir + "/t.txt").out);
  // video --top-k with --query, and --text with -k: the same matches
  {
    apps::VideoWriter w(dir + "/v.mp4", 64, 48, 10);
    for (int f = 0; f < 30; ++f) w.write(apps::synthetic::solid(64, 48, f < 15 ? 200 : 30, 40, f < 15 ? 30 : 200, f + 1));
  }
  auto a = run_clipkit("video --model " + kModel + " " + dir + "/v.mp4 --query 'a red circle' --top-k 2 --json");
  auto b = run_clipkit("video --model " + kModel + " " + dir + "/v.mp4 --text 'a red circle' -k 2 --json");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(json::parse(a.out)["matches"].size(), 2u);
  EXPECT_EQ(json::parse(a.out)["matches"], json::parse(b.out)["matches"]);
  // video --index of an existing index takes its model
  r = run_clipkit("video " + dir + "/v.mp4 --index " + dir + "/idx --every 1");
  EXPECT_EQ(r.status, 0) << r.err;
  fs::remove_all(dir);
}

// --json on the commands that produce a result (embed, index build/add/remove, dedup summary,
// train, init, compose, data shapes, preprocess): one parseable document on stdout.
TEST(FlagsCli, JsonOnEveryCommandWithAResult) {
  const std::string dir = test::temp_dir("flags_json");
  auto j = [&](const std::string& args) {
    auto r = run_clipkit(args + " --json");
    EXPECT_TRUE(r.status == 0 || r.status == 3) << args << "\n" << r.err;
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << args << ": not JSON: " << r.out;
      return json();
    }
  };
  auto e = j("embed --model " + kModel + " --images " + kImage + " --out " + dir + "/e.npy");
  EXPECT_EQ(e["rows"], 1);
  EXPECT_EQ(e["dim"], 48);
  auto s = j("embed --model " + kModel + " --folder " + kCoco + "/val2017 --out " + dir + "/shards --shard-size 25");
  EXPECT_EQ(s["rows"], 40);
  EXPECT_EQ(s["shards"], 2);
  auto b = j("index build --model " + kModel + " --coco " + kCoco + " --split val --index " + dir + "/idx");
  EXPECT_EQ(b["count"], 40);
  auto a = j("index add --index " + dir + "/idx --coco " + kCoco + " --split train");
  EXPECT_EQ(a["added"], 150);
  EXPECT_EQ(a["count"], 190);
  auto rm = j("index remove --index " + dir + "/idx --ids 0 1 2");
  EXPECT_EQ(rm["removed"], 3);
  EXPECT_EQ(rm["count"], 187);
  auto d = j("dedup --index " + dir + "/idx --report " + dir + "/d.json");
  EXPECT_EQ(d["images"], 187);
  EXPECT_TRUE(d.contains("suggested_removals") && d.contains("report"));
  auto t = j("train --model " + kDual + " --data " + kCoco + " --out " + dir + "/t --freeze-vision --freeze-text"
             " --max-steps 2 --batch-size 16 --no-eval --threads 2");
  EXPECT_EQ(t["steps"], 2);
  EXPECT_TRUE(t["last_loss"].is_number());
  EXPECT_EQ(j("init --arch clip-tiny --out " + dir + "/init")["arch"], "clip-tiny");
  EXPECT_EQ(j("data shapes --out " + dir + "/shapes --train 4 --val 2 --zeroshot-per-class 0")["train_images"], 4);
  EXPECT_EQ(j("preprocess --model " + kModel + " " + kImage + " --out " + dir + "/p.npy")["shape"],
            (json{1, 3, 64, 64}));
  fs::remove_all(dir);
}

// A fake Hugging Face cache holding tiny-clip as huggingface_hub lays it out (blobs named by
// hash, snapshots of symlinks, refs/main and refs/v1 for two revisions): models by hub id.
TEST(FlagsCli, ModelsByHubIdThroughTheCache) {
  const std::string dir = test::temp_dir("flags_hub");
  const fs::path repo = fs::path(dir) / "hub/models--tester--tiny-clip";
  const std::string rev1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", rev2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "refs");
  for (const auto& rev : {rev1, rev2}) {
    fs::create_directories(repo / "snapshots" / rev);
    for (auto& f : fs::directory_iterator(kModel)) {
      const std::string name = f.path().filename().string();
      const std::string blob = "blob-" + name + (rev == rev2 && name == "config.json" ? "-2" : "");
      if (!fs::exists(repo / "blobs" / blob)) fs::copy_file(f.path(), repo / "blobs" / blob);
      fs::create_symlink(fs::path("../../blobs") / blob, repo / "snapshots" / rev / name);
    }
  }
  write_file_atomic((repo / "refs/main").string(), rev2);
  write_file_atomic((repo / "refs/v1").string(), rev1);
  ::setenv("HF_HUB_CACHE", (fs::path(dir) / "hub").c_str(), 1);
  auto r = run_clipkit("info tester/tiny-clip --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["path"], (repo / "snapshots" / rev2).string());
  r = run_clipkit("info --model tester/tiny-clip@v1 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["path"], (repo / "snapshots" / rev1).string());
  r = run_clipkit("info --model " + repo.string() + " --json");  // the cache folder itself
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["path"], (repo / "snapshots" / rev2).string());
  // embedding through a hub id gives what the folder gives
  auto a = run_clipkit("embed --model tester/tiny-clip --text 'a cat' --out " + dir + "/a.npy");
  auto b = run_clipkit("embed --model " + kModel + " --text 'a cat' --out " + dir + "/b.npy");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(read_file(dir + "/a.npy"), read_file(dir + "/b.npy"));
  // an index built through the hub id records the snapshot, and search finds it again
  r = run_clipkit("index build --model tester/tiny-clip --folder " + kCoco + "/val2017 --index " + dir + "/idx --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(run_clipkit("search --index " + dir + "/idx --text cat").status, 0);
  // a model not in the cache: where it looked, and the command that downloads it
  r = run_clipkit("info openai/clip-vit-base-patch32");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(dir + "/hub/models--openai--clip-vit-base-patch32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("huggingface-cli download openai/clip-vit-base-patch32"), std::string::npos) << r.err;
  r = run_clipkit("embed --model tester/tiny-clip@v9 --text x --out " + dir + "/c.npy");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("refs: main, v1"), std::string::npos) << r.err;
  ::unsetenv("HF_HUB_CACHE");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
