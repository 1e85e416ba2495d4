// Issue 14's crafted inputs against the CLI: each one used to crash clipkit, stop a whole job or be
// accepted silently. Now every one ends in a message naming the file (or field) and the problem,
// or is handled the way HF / the user expects, and the rest of the job goes on.
#include <gtest/gtest.h>
#include <sys/file.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/synthetic.h"
#include "cli_util.h"
#include "core/json.h"
#include "image/encode.h"
#include "index/library.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;
namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModel = data_path("models/tiny-clip");
const std::string kCoco = data_path("datasets/coco-tiny");
// above Linux's default pid_max (4194304): no process has it
const std::string kDeadPid = std::to_string((1 << 22) + 4321);

std::string q(const std::string& s) { return "'" + s + "'"; }

// A copy of the tiny CLIP checkpoint whose `file` is replaced by `content` (unless empty).
std::string model_with(const std::string& dir, const std::string& file, const std::string& content) {
  fs::remove_all(dir);
  fs::copy(kModel, dir, fs::copy_options::recursive);
  if (!file.empty()) write_file_atomic(dir + "/" + file, content);
  return dir;
}

json edited_json(const std::string& path, const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(path));
  edit(j);
  return j;
}

void expect_error(const test::RunResult& r, std::initializer_list<std::string> says) {
  EXPECT_EQ(r.status, 1) << r.err;
  for (auto& s : says) EXPECT_NE(r.err.find(s), std::string::npos) << "wanted '" << s << "' in: " << r.err;
  EXPECT_EQ(r.err.find("type_error"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
}

TEST(HardeningCli, CraftedModelFilesAreRefusedNamingTheFile) {
  const std::string dir = test::temp_dir("hard_model");
  // 300,000-deep config.json and 200,000-deep tokenizer files crashed info/embed/tokenize
  auto m = model_with(dir + "/deep_config", "config.json", std::string(300000, '[') + std::string(300000, ']'));
  expect_error(run_clipkit("info " + m), {m + "/config.json", "deeper than 128"});
  m = model_with(dir + "/deep_vocab", "vocab.json", "{\"a\": " + std::string(200000, '[') + "}");
  expect_error(run_clipkit("tokenize --model " + m + " --text hi"), {m + "/vocab.json", "deeper than 128"});
  expect_error(run_clipkit("embed --model " + m + " --text hi --out " + dir + "/o.npy"), {"vocab.json", "deeper"});
  // ids that wrapped or turned into <unk>
  m = model_with(dir + "/big_id", "added_tokens.json", R"({"<big>": 4294967301})");
  expect_error(run_clipkit("tokenize --model " + m + " --text hi"), {"added_tokens.json", "4294967301", "outside"});
  // values that gave NaN embeddings with exit 0
  auto cfg = edited_json(kModel + "/config.json", [](json& j) { j["text_config"]["layer_norm_eps"] = -1e-5; });
  m = model_with(dir + "/neg_eps", "config.json", cfg.dump());
  expect_error(run_clipkit("embed --model " + m + " --text hi --out " + dir + "/o.npy"), {"layer_norm_eps", "positive"});
  auto pre = edited_json(kModel + "/preprocessor_config.json", [](json& j) { j["image_std"] = {0.2, 0.0, 0.2}; });
  m = model_with(dir + "/std0", "preprocessor_config.json", pre.dump());
  expect_error(run_clipkit("embed --model " + m + " --images " + data_path("images/chelsea.jpg") + " --out " + dir + "/o.npy"),
               {"preprocessor_config.json", "image_std", "is 0"});
  {
    m = model_with(dir + "/nan", "", "");
    std::vector<std::pair<std::string, Tensor>> ts;
    std::string bad_name;
    const SafeTensorsFile weights(kModel + "/model.safetensors");
    for (auto& [name, t] : weights.tensors()) {
      Tensor c = Tensor::empty(t.dtype, t.shape);
      std::memcpy(c.data, t.data, t.nbytes());
      if (bad_name.empty() && t.dtype == DType::F32 && name.find("layer_norm") != std::string::npos) {
        c.ptr<float>()[0] = std::nanf("");
        bad_name = name;
      }
      ts.emplace_back(name, c);
    }
    write_safetensors(m + "/model.safetensors", ts);
    ASSERT_FALSE(bad_name.empty());
    expect_error(run_clipkit("embed --model " + m + " --text hi --out " + dir + "/o.npy"), {"\"" + bad_name + "\"", "NaN"});
    // an image-only job leaves the (corrupt) text tower on disk
    ASSERT_EQ(bad_name.rfind("text_model.", 0), 0u) << bad_name;
    auto r = run_clipkit("embed --model " + m + " --images " + data_path("images/chelsea.jpg") + " --out " + dir + "/i.npy");
    EXPECT_EQ(r.status, 0) << r.err;
  }
  fs::remove_all(dir);
}

// HF's processor without a center crop resizes the shortest edge and keeps the aspect: a square
// image becomes the model's size and embeds; another shape cannot batch and is skipped with a
// message (this was heap corruption: "double free" / SIGSEGV).
TEST(HardeningCli, NoCenterCropEmbedsWhatBatchesAndSkipsTheRest) {
  const std::string dir = test::temp_dir("hard_nocrop");
  auto pre = edited_json(kModel + "/preprocessor_config.json", [](json& j) { j["do_center_crop"] = false; });
  auto m = model_with(dir + "/m", "preprocessor_config.json", pre.dump());
  image::write_png(dir + "/square.png", apps::synthetic::solid(90, 90, 200, 40, 40));
  const std::string wide = data_path("images/chelsea.jpg");
  auto r = run_clipkit("embed --model " + m + " --images " + dir + "/square.png " + wide + " --out " + dir + "/e.npy");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find(wide + ": a "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("without a center crop"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir + "/e.jsonl").find("square.png"), std::string::npos);
  // the square image's embedding is the one the cropping config gives (64x64 either way)
  auto ref = run_clipkit("embed --model " + kModel + " --images " + dir + "/square.png --out " + dir + "/ref.npy");
  ASSERT_EQ(ref.status, 0) << ref.err;
  EXPECT_EQ(read_file(dir + "/e.npy"), read_file(dir + "/ref.npy"));
  for (const std::string& cmd : {"compare --model " + m + " --images " + wide + " --text cat",
                                 "classify --model " + m + " --labels cat,dog " + wide}) {
    auto c = run_clipkit(cmd);
    EXPECT_TRUE(c.status == 1 || c.status == 3) << cmd << ": " << c.status << " " << c.err;
    EXPECT_NE(c.err.find("without a center crop"), std::string::npos) << cmd << ": " << c.err;
  }
  fs::remove_all(dir);
}

TEST(HardeningCli, NpyHeadersCannotOverflowOrOverAllocate) {
  const std::string dir = test::temp_dir("hard_npy");
  auto npy = [&](const std::string& name, const std::string& shape, size_t data) {
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size()) + '\0' + h + std::string(data, '\0');
    write_file_atomic(dir + "/" + name, out);
    return dir + "/" + name;
  };
  for (auto [file, says] : {std::pair{npy("overflow.npy", "(1125899906842624, 3, 64, 64)", 4 * 3 * 64 * 64), "overflows"},
                            std::pair{npy("negative.npy", "(-2, 3, 64, 64)", 4 * 3 * 64 * 64), "non-negative"},
                            std::pair{npy("liar.npy", "(1000000, 3, 64, 64)", 4 * 3 * 64 * 64), "needs 49152000000"}})
    expect_error(run_clipkit("embed --model " + kModel + " --pixels " + file + " --out " + dir + "/o.npy"), {file, says});
  fs::remove_all(dir);
}

// File names are bytes: one that is not UTF-8 no longer stops a job (bare type_error.316); it is
// stored exactly and printed as \udcXX escapes (what Python's json + os.fsencode read back).
TEST(HardeningCli, NonUtf8FileNamesAreKeptExactly) {
  const std::string dir = test::temp_dir("hard_names");
  fs::create_directories(dir + "/imgs");
  const std::string odd = dir + "/imgs/caf\xe9-\xff.jpg";
  fs::copy_file(kCoco + "/val2017/000000269726.jpg", odd);
  fs::copy_file(data_path("images/chelsea.jpg"), dir + "/imgs/plain.jpg");
  auto b = run_clipkit("index build --model " + kModel + " --images " + q(dir + "/imgs") + " --index " + dir + "/idx");
  ASSERT_EQ(b.status, 0) << b.err;
  auto s = run_clipkit("search --index " + dir + "/idx --image " + q(odd) + " -k 2 --json");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("caf\\udce9-\\udcff.jpg"), std::string::npos) << s.out;
  auto hits = parse_json(s.out, "search output")["results"];
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["path"].get<std::string>(), odd);  // the exact bytes
  EXPECT_TRUE(fs::exists(hits[0]["path"].get<std::string>()));
  auto e = run_clipkit("embed --model " + kModel + " --folder " + q(dir + "/imgs") + " --out " + dir + "/shards");
  EXPECT_EQ(e.status, 0) << e.err;
  fs::remove_all(dir);
}

TEST(HardeningCli, IndexLifeCycle) {
  const std::string dir = test::temp_dir("hard_index");
  const std::string idx = dir + "/idx";
  fs::create_directories(dir + "/a");
  fs::create_directories(dir + "/b");
  int n = 0;
  for (auto& e : fs::directory_iterator(kCoco + "/val2017"))
    fs::copy_file(e.path(), dir + (n++ % 2 ? "/a/" : "/b/") + e.path().filename().string());
  ASSERT_EQ(run_clipkit("index build --model " + kModel + " --images " + dir + "/a --index " + idx).status, 0);
  // --overwrite with another image set ("different input list" before)
  auto over = run_clipkit("index build --model " + kModel + " --images " + dir + "/b --index " + idx + " --overwrite");
  ASSERT_EQ(over.status, 0) << over.err;
  EXPECT_EQ(index::Library::open(idx)->info().count, 20);
  // a killed `add` left IDX/embeddings-add behind: the next add of another folder goes through
  auto killed =
      run_clipkit("index add --index " + idx + " --images " + kCoco + "/train2017 --shard-size 50 --stop-after-shards 1");
  EXPECT_EQ(killed.status, 1) << killed.err;
  EXPECT_TRUE(fs::exists(idx + "/embeddings-add/manifest.json"));
  write_file_atomic(idx + "/index.json.tmp." + kDeadPid, "left by a killed writer");
  auto add = run_clipkit("index add --index " + idx + " --images " + dir + "/a");
  ASSERT_EQ(add.status, 0) << add.err;
  EXPECT_EQ(index::Library::open(idx)->info().count, 40);
  EXPECT_FALSE(fs::exists(idx + "/index.json.tmp." + kDeadPid));
  // a second writer is refused at once, naming the running one (two adds failed with misleading errors)
  {
    index::WriterLock held(idx);
    auto second = run_clipkit("index add --index " + idx + " --images " + dir + "/a");
    expect_error(second, {idx, "another clipkit command (pid " + std::to_string(::getpid()) + ")", "wait for it"});
    expect_error(run_clipkit("index remove --index " + idx + " --ids 1"), {"another clipkit command"});
  }
  EXPECT_EQ(run_clipkit("index remove --index " + idx + " --ids 1").status, 0);
  fs::remove_all(dir);
}

// COCO rows `data check` reports are left out of `index build --coco` with the same count (it said
// "0 skipped"), and a file_name leading outside the image folder is never opened.
TEST(HardeningCli, CocoProblemsAreCountedAndPathsStayInside) {
  const std::string dir = test::temp_dir("hard_coco");
  fs::create_directories(dir + "/coco/annotations");
  fs::copy(kCoco + "/val2017", dir + "/coco/val2017", fs::copy_options::recursive);
  auto ann = edited_json(kCoco + "/annotations/captions_val2017.json", [](json& j) {
    j["images"][0]["file_name"] = "/etc/passwd";
    j["images"][1]["file_name"] = "../../val2017/000000269726.jpg";
    j["annotations"][10]["caption"] = 17;
  });
  write_file_atomic(dir + "/coco/annotations/captions_val2017.json", ann.dump());
  auto check = run_clipkit("data check --data " + dir + "/coco --split val --json");
  ASSERT_EQ(check.status, 3) << check.err;
  const int64_t skipped = json::parse(check.out)["skipped"];
  EXPECT_EQ(skipped, 11);  // 5 + 5 captions of the two outside images, 1 caption not a string
  EXPECT_NE(check.out.find("image_outside_folder"), std::string::npos) << check.out;
  auto b = run_clipkit("index build --model " + kModel + " --coco " + dir + "/coco --split val --index " + dir + "/idx");
  EXPECT_EQ(b.status, 3) << b.err;
  EXPECT_NE(b.err.find("and 11 dataset rows left out"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("file_name leads outside the image folder"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("/etc/passwd: "), std::string::npos) << b.err;  // never opened
  EXPECT_EQ(index::Library::open(dir + "/idx")->info().count, 38);
  fs::remove_all(dir);
}

TEST(HardeningCli, TextInputsAreValidated) {
  const std::string dir = test::temp_dir("hard_text");
  // a binary "CSV" was a bare type_error.316
  write_file_atomic(dir + "/t.csv", std::string("image_path,caption\nx.jpg,caf\xe9\xff\n"));
  expect_error(run_clipkit("data check --data " + dir + "/t.csv --no-image-check"), {dir + "/t.csv", "not UTF-8", "line 2"});
  // model_max_length int(1e30) is HF's "no limit": --pad pads to --max-length only; 2^31-1 is refused
  auto tc = edited_json(kModel + "/tokenizer_config.json", [](json& j) { j["model_max_length"] = 1e30; });
  auto m = model_with(dir + "/m", "tokenizer_config.json", tc.dump());
  auto t = run_clipkit("tokenize --model " + m + " --text 'a cat' --pad");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_EQ(json::parse(t.out)["ids"].size(), 4u);
  expect_error(run_clipkit("tokenize --model " + m + " --text cat --pad --max-length 2147483647"),
               {"padding to 2147483647 tokens"});
  fs::remove_all(dir);
}

TEST(HardeningCli, VideoRefusesStillImagesWhateverTheirName) {
  const std::string dir = test::temp_dir("hard_video");
  fs::copy_file(data_path("images/chelsea.jpg"), dir + "/clip.mp4");
  fs::copy_file(data_path("images/chelsea.jpg"), dir + "/noext");
  for (auto f : {dir + "/clip.mp4", dir + "/noext"})
    expect_error(run_clipkit("video --model " + kModel + " " + f + " --labels cat,dog"), {f, "a still image"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
