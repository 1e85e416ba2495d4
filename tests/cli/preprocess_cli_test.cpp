// `clipkit preprocess` end to end: output equals the HF references, .jsonl rows, skipped inputs
// listed with exit 3, flag errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/reference_data.h"

namespace {

namespace fs = std::filesystem;
using clipkit::image::testing::load_reference;

struct CliRun {
  int rc;
  std::string err;
};

CliRun clipkit(const std::string& args) {
  fs::path err = fs::temp_directory_path() / ("clipkit_pp_err_" + std::to_string(::getpid()));
  std::string cmd = std::string(CLIPKIT_BINARY) + " " + args + " 2>" + err.string() + " >/dev/null";
  int st = std::system(cmd.c_str());
  std::ifstream f(err);
  std::stringstream ss;
  ss << f.rdbuf();
  fs::remove(err);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ss.str()};
}

// Minimal .npy reader for float32 C-order files.
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  std::ifstream f(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.compare(0, 6, "\x93NUMPY"), 0);
  size_t hlen = static_cast<uint8_t>(all[8]) | (static_cast<uint8_t>(all[9]) << 8);
  std::string header = all.substr(10, hlen);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  shape->clear();
  size_t p = header.find('(') + 1, e = header.find(')');
  std::stringstream dims(header.substr(p, e - p));
  std::string d;
  while (std::getline(dims, d, ','))
    if (d.find_first_not_of(' ') != std::string::npos) shape->push_back(std::stoll(d));
  std::vector<float> v((all.size() - 10 - hlen) / 4);
  if (!v.empty()) std::memcpy(v.data(), all.data() + 10 + hlen, v.size() * 4);
  return v;
}

double max_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

class PreprocessCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("clipkit_pp_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string img(const std::string& name) { return std::string(CLIPKIT_TEST_DATA) + "/images/" + name; }
  fs::path dir;
};

TEST_F(PreprocessCli, SizeMatchesReferenceAndSkipsBadFiles) {
  const std::string out = (dir / "x.npy").string();
  CliRun r = clipkit("preprocess --size 224 " + img("rocket.jpg") + " " + img("bad/truncated.png") + " " +
                  img("palette.png") + " " + img("bad/not_an_image.png") + " --threads 2 --out " + out);
  EXPECT_EQ(r.rc, 3) << r.err;  // kSkippedInputs
  EXPECT_NE(r.err.find("skipped " + img("bad/truncated.png") + ": truncated PNG"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped " + img("bad/not_an_image.png") + ": not a recognized image"), std::string::npos);
  std::vector<int64_t> shape;
  auto v = read_npy_f32(out, &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{2, 3, 224, 224}));
  const size_t per = 3 * 224 * 224;
  ASSERT_EQ(v.size(), 2 * per);
  auto a = load_reference("rocket.jpg.S224.safetensors"), b = load_reference("palette.png.S224.safetensors");
  EXPECT_LE(max_diff(v.data(), a.tensors.at("pixel_values").f32(), per), 1e-6);
  EXPECT_LE(max_diff(v.data() + per, b.tensors.at("pixel_values").f32(), per), 1e-6);
  std::ifstream j(dir / "x.jsonl");
  std::string l1, l2, l3;
  std::getline(j, l1);
  std::getline(j, l2);
  EXPECT_FALSE(std::getline(j, l3));
  EXPECT_EQ(l1, "{\"row\":0,\"file\":\"" + img("rocket.jpg") + "\"}");
  EXPECT_EQ(l2, "{\"row\":1,\"file\":\"" + img("palette.png") + "\"}");
}

TEST_F(PreprocessCli, ModelConfigAndExifTranspose) {
  // tests/data/images/config holds tiny-clip's preprocessor_config.json (shortest edge 64, crop 64).
  const std::string out = (dir / "m.npy").string();
  CliRun r = clipkit("preprocess --model " + std::string(CLIPKIT_TEST_DATA) + "/images/config " +
                  img("exif_orientation6.jpg") + " " + img("small_37x23.png") + " --exif-transpose --out " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<int64_t> shape;
  auto v = read_npy_f32(out, &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{2, 3, 64, 64}));
  auto a = load_reference("exif_orientation6.jpg.exif_transposed.S64.safetensors");
  auto b = load_reference("small_37x23.png.S64.safetensors");
  EXPECT_LE(max_diff(v.data(), a.tensors.at("pixel_values").f32(), 3 * 64 * 64), 1e-6);
  EXPECT_LE(max_diff(v.data() + 3 * 64 * 64, b.tensors.at("pixel_values").f32(), 3 * 64 * 64), 1e-6);
}

// --image-backend torchvision: transformers 5's processor, against torchvision 0.21 (torch 2.6).
TEST_F(PreprocessCli, TorchvisionBackendMatchesTorchvision) {
  const std::string out = (dir / "tv.npy").string();
  CliRun r = clipkit("preprocess --size 224 --image-backend torchvision " + img("chelsea.jpg") + " --out " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<int64_t> shape;
  auto v = read_npy_f32(out, &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{1, 3, 224, 224}));
  auto ref = load_reference("torch-2.6.0.safetensors", "torchvision");
  const auto& crop = ref.tensors.at("chelsea.jpg@224-224");  // HWC uint8
  const float* values = ref.tensors.at("values").f32();       // [3, 256]
  std::vector<float> want(3 * 224 * 224);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 224 * 224; ++p) want[c * 224 * 224 + p] = values[c * 256 + crop.bytes[p * 3 + c]];
  EXPECT_LE(max_diff(v.data(), want.data(), want.size()), 1e-6);
  r = clipkit("preprocess --size 64 --image-backend opencv " + img("chelsea.jpg") + " --out " + out);
  EXPECT_EQ(r.rc, 2);
}

TEST_F(PreprocessCli, AllBadStillWritesEmptyOutputAndExits3) {
  const std::string out = (dir / "e.npy").string();
  CliRun r = clipkit("preprocess --size 64 " + img("bad/empty.jpg") + " --out " + out);
  EXPECT_EQ(r.rc, 3) << r.err;
  std::vector<int64_t> shape;
  read_npy_f32(out, &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{0, 3, 64, 64}));
}

TEST_F(PreprocessCli, FlagErrors) {
  const std::string out = (dir / "f.npy").string();
  EXPECT_EQ(clipkit("preprocess --size 64 --model x " + img("rocket.jpg") + " --out " + out).rc, 2);
  CliRun r = clipkit("preprocess " + img("rocket.jpg") + " --out " + out);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("give one of --model or --size"), std::string::npos) << r.err;
  r = clipkit("preprocess --model " + dir.string() + " " + img("rocket.jpg") + " --out " + out);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("preprocessor_config.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(PreprocessCli, MaxPixelsLimit) {
  const std::string out = (dir / "b.npy").string();
  CliRun r = clipkit("preprocess --size 64 --max-pixels 1000 " + img("rocket.jpg") + " --out " + out);
  EXPECT_EQ(r.rc, 3);
  EXPECT_NE(r.err.find("exceeds the limit of 1000 pixels"), std::string::npos) << r.err;
}

}  // namespace
