// COCO captions loading at COCO train2017 scale: a synthetic captions_train2017.json with the real
// file's shape (118,287 images, 591,753 captions, compact JSON, ~90 MB) plus 118,287 empty image
// files, written once under $CLIPKIT_BENCH_DIR (default /tmp/clipkit-coco-synth).
//   BM_LoadCoco/0: parse + rows, no file check;  BM_LoadCoco/1: + one stat per image.
//   BM_LoadCsv: the same rows as a CSV table (image_path,caption), file check included.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "dataset/caption_dataset.h"

namespace {

constexpr int kImages = 118287;
constexpr int kCaptions = 591753;

std::string bench_dir() {
  const char* d = std::getenv("CLIPKIT_BENCH_DIR");
  return d ? d : "/tmp/clipkit-coco-synth";
}

// Builds the synthetic dataset once (a marker file says it is complete).
const std::string& dataset_root() {
  static const std::string root = [] {
    namespace fs = std::filesystem;
    std::string r = bench_dir();
    if (fs::exists(r + "/.complete")) return r;
    fs::create_directories(r + "/annotations");
    fs::create_directories(r + "/train2017");
    std::mt19937 rng(2017);
    const char* words[] = {"a", "man", "riding", "wave", "on", "top", "of", "surfboard", "kitchen", "with", "stainless",
                           "steel", "appliances", "two", "dogs", "playing", "in", "the", "grass", "near", "red",
                           "bus", "parked", "street", "pizza", "table", "cat", "sitting", "laptop", "keyboard"};
    std::string js = "{\"info\":{\"description\":\"synthetic\"},\"licenses\":[],\"images\":[";
    std::vector<int64_t> ids(kImages);
    for (int i = 0; i < kImages; ++i) {
      ids[i] = 9 + static_cast<int64_t>(i) * 5 + rng() % 5;
      std::string fn = fmt::format("{:012d}.jpg", ids[i]);
      js += fmt::format(
          "{}{{\"license\":3,\"file_name\":\"{}\",\"coco_url\":\"http://images.cocodataset.org/train2017/{}\","
          "\"height\":480,\"width\":640,\"date_captured\":\"2013-11-14 11:18:45\","
          "\"flickr_url\":\"http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg\",\"id\":{}}}",
          i ? "," : "", fn, fn, ids[i]);
      std::ofstream(r + "/train2017/" + fn);
    }
    js += "],\"annotations\":[";
    std::string csv = "image_path,caption\n";
    for (int i = 0; i < kCaptions; ++i) {
      std::string cap = "A";
      for (int w = 0, n = 8 + rng() % 6; w < n; ++w) cap += std::string(" ") + words[rng() % 30];
      cap += ".";
      int64_t img = ids[rng() % kImages];
      js += fmt::format("{}{{\"image_id\":{},\"id\":{},\"caption\":\"{}\"}}", i ? "," : "", img, 37 + i * 3, cap);
      csv += fmt::format("train2017/{:012d}.jpg,\"{}\"\n", img, cap);
    }
    js += "]}";
    std::ofstream(r + "/annotations/captions_train2017.json", std::ios::binary) << js;
    std::ofstream(r + "/train.csv", std::ios::binary) << csv;
    std::ofstream(r + "/.complete") << "ok";
    return r;
  }();
  return root;
}

void BM_LoadCoco(benchmark::State& state) {
  const std::string& root = dataset_root();
  const bool check = state.range(0) != 0;
  int64_t rows = 0;
  for (auto _ : state) {
    auto ds = clipkit::dataset::load_coco(root, "train", check);
    rows = static_cast<int64_t>(ds.rows.size());
    benchmark::DoNotOptimize(ds.rows.data());
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.SetItemsProcessed(state.iterations() * rows);
}
BENCHMARK(BM_LoadCoco)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_LoadCsv(benchmark::State& state) {
  const std::string path = dataset_root() + "/train.csv";
  int64_t rows = 0;
  for (auto _ : state) {
    auto ds = clipkit::dataset::load_caption_table(path);
    rows = static_cast<int64_t>(ds.rows.size());
    benchmark::DoNotOptimize(ds.rows.data());
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.SetItemsProcessed(state.iterations() * rows);
}
BENCHMARK(BM_LoadCsv)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
