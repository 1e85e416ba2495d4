// `clipkit embed` / `info` / `init` / `compare` end to end on the tiny checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;

const std::string kModels[] = {"tiny-clip", "tiny-clip-roberta"};

TEST(EmbedCli, PixelsMatchReferenceRawAndNormalized) {
  auto dir = test::temp_dir("embed_px");
  for (const auto& name : kModels) {
    SafeTensorsFile ref(data_path("reference/models/" + name + ".safetensors"));
    write_npy(dir + "/px.npy", ref.get("pixel_values"));
    auto r = run_clipkit("embed --model " + data_path("models/" + name) + " --pixels " + dir + "/px.npy --out " + dir +
                         "/e.npy --no-normalize");
    ASSERT_EQ(r.status, 0) << r.err;
    Tensor e = read_npy(dir + "/e.npy");
    ASSERT_EQ(e.shape, (Shape{4, 48}));
    EXPECT_CLOSE_TO_REF("image_embeds_unnormalized", e.ptr<float>(), ref.get("image_embeds_unnormalized"), 2e-5);
    r = run_clipkit("embed --model " + data_path("models/" + name) + " --pixels " + dir + "/px.npy --out " + dir +
                    "/n.npy --batch-size 3");
    ASSERT_EQ(r.status, 0) << r.err;
    Tensor n = read_npy(dir + "/n.npy");
    EXPECT_CLOSE_TO_REF("image_embeds", n.ptr<float>(), ref.get("image_embeds"), 3e-6);
    std::string side = read_file(dir + "/n.jsonl");
    EXPECT_EQ(std::count(side.begin(), side.end(), '\n'), 4);
  }
  std::filesystem::remove_all(dir);
}

TEST(EmbedCli, TextsMatchReference) {
  auto dir = test::temp_dir("embed_txt");
  for (const auto& name : kModels) {
    SafeTensorsFile ref(data_path("reference/models/" + name + ".safetensors"));
    auto caps = nlohmann::json::parse(ref.metadata().at("captions"));
    std::string jsonl;
    for (auto& c : caps) jsonl += nlohmann::json{{"text", c}}.dump() + "\n";
    write_file_atomic(dir + "/caps.jsonl", jsonl);
    auto r = run_clipkit("embed --model " + data_path("models/" + name) + " --texts " + dir + "/caps.jsonl --out " + dir +
                         "/t.npy --batch-size 3");
    ASSERT_EQ(r.status, 0) << r.err;
    Tensor t = read_npy(dir + "/t.npy");
    ASSERT_EQ(t.shape, (Shape{8, 48}));
    // dynamic padding per batch gives the same embeddings as the reference's fixed-length padding
    EXPECT_CLOSE_TO_REF("text_embeds", t.ptr<float>(), ref.get("text_embeds"), 3e-6);
    auto side = read_file(dir + "/t.jsonl");
    EXPECT_NE(side.find(nlohmann::json(caps[4].get<std::string>()).dump()), std::string::npos);
  }
  auto r = run_clipkit("embed --model " + data_path("models/tiny-clip") + " --text 'a photo of a cat' --text x --out " +
                       dir + "/two.npy");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_npy(dir + "/two.npy").shape, (Shape{2, 48}));
  std::filesystem::remove_all(dir);
}

TEST(EmbedCli, ImagesSkipBadFilesWithStatus3) {
  auto dir = test::temp_dir("embed_img");
  write_file_atomic(dir + "/broken.jpg", "this is not an image");
  std::string imgs = data_path("images/chelsea.jpg") + " " + dir + "/broken.jpg " + data_path("images/palette.png");
  auto r = run_clipkit("embed --model " + data_path("models/tiny-clip") + " --images " + imgs + " --out " + dir + "/i.npy");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
  Tensor e = read_npy(dir + "/i.npy");
  ASSERT_EQ(e.shape, (Shape{2, 48}));
  for (int i = 0; i < 2; ++i) {
    double s = 0;
    for (int d = 0; d < 48; ++d) s += e.ptr<float>()[i * 48 + d] * e.ptr<float>()[i * 48 + d];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  auto side = read_file(dir + "/i.jsonl");
  EXPECT_NE(side.find("chelsea.jpg"), std::string::npos);
  EXPECT_EQ(side.find("broken.jpg"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// --max-length N truncates token ids to N (special tokens included), as tokenizer(..., truncation=True,
// max_length=N) does: a long text cut to 8 ids embeds exactly as its first 6 words (each one BPE token).
TEST(EmbedCli, MaxLengthTruncatesLikeTheTokenizer) {
  auto dir = test::temp_dir("embed_maxlen");
  const std::string long_text = "'a red circle on the left of a blue square below a green star'";
  for (const auto& name : kModels) {
    const std::string m = "embed --model " + data_path("models/" + name);
    auto cut = run_clipkit(m + " --text " + long_text + " --max-length 8 --out " + dir + "/cut.npy");
    ASSERT_EQ(cut.status, 0) << cut.err;
    auto prefix = run_clipkit(m + " --text 'a red circle on the left' --out " + dir + "/prefix.npy");
    ASSERT_EQ(prefix.status, 0) << prefix.err;
    auto full = run_clipkit(m + " --text " + long_text + " --out " + dir + "/full.npy");
    ASSERT_EQ(full.status, 0) << full.err;
    Tensor c = read_npy(dir + "/cut.npy"), p = read_npy(dir + "/prefix.npy"), f = read_npy(dir + "/full.npy");
    double cp = 0, cf = 0;
    for (int d = 0; d < 48; ++d) {
      cp = std::max(cp, std::fabs(double(c.ptr<float>()[d]) - p.ptr<float>()[d]));
      cf = std::max(cf, std::fabs(double(c.ptr<float>()[d]) - f.ptr<float>()[d]));
    }
    EXPECT_LE(cp, 1e-6) << name;
    EXPECT_GT(cf, 1e-3) << name << ": truncation changed nothing";
  }
  auto big = run_clipkit("embed --model " + data_path("models/tiny-clip") + " --text x --max-length 100000 --out " + dir +
                         "/big.npy");
  EXPECT_EQ(big.status, 1);
  EXPECT_NE(big.err.find("text positions"), std::string::npos) << big.err;
  EXPECT_EQ(run_clipkit("embed --model " + data_path("models/tiny-clip") + " --text x --max-length 1 --out " + dir +
                        "/one.npy")
                .status,
            2);
  std::filesystem::remove_all(dir);
}

// --image-backend torchvision embeds the pixels `clipkit preprocess --image-backend torchvision`
// makes (transformers 5's processor), which differ from the default Pillow path's.
TEST(EmbedCli, ImageBackendChoosesThePreprocessing) {
  auto dir = test::temp_dir("embed_backend");
  const std::string model = data_path("models/tiny-clip");
  const std::string imgs = data_path("images/chelsea.jpg") + " " + data_path("images/rocket.jpg");
  for (const std::string backend : {"pil", "torchvision"}) {
    auto pp = run_clipkit("preprocess --model " + model + " " + imgs + " --image-backend " + backend + " --out " + dir +
                          "/px_" + backend + ".npy");
    ASSERT_EQ(pp.status, 0) << pp.err;
    auto e = run_clipkit("embed --model " + model + " --images " + imgs + " --image-backend " + backend + " --out " +
                         dir + "/img_" + backend + ".npy");
    ASSERT_EQ(e.status, 0) << e.err;
    auto px = run_clipkit("embed --model " + model + " --pixels " + dir + "/px_" + backend + ".npy --out " + dir +
                          "/frompx_" + backend + ".npy");
    ASSERT_EQ(px.status, 0) << px.err;
    Tensor a = read_npy(dir + "/img_" + backend + ".npy"), b = read_npy(dir + "/frompx_" + backend + ".npy");
    ASSERT_EQ(a.shape, (Shape{2, 48}));
    for (int i = 0; i < 2 * 48; ++i) EXPECT_EQ(a.ptr<float>()[i], b.ptr<float>()[i]) << backend << " " << i;
  }
  Tensor pil = read_npy(dir + "/px_pil.npy"), tv = read_npy(dir + "/px_torchvision.npy");
  double diff = 0;
  for (int64_t i = 0; i < pil.numel(); ++i) diff = std::max(diff, std::fabs(double(pil.ptr<float>()[i]) - tv.ptr<float>()[i]));
  EXPECT_GT(diff, 1e-3) << "the two backends gave the same pixels";
  auto bad = run_clipkit("embed --model " + model + " --images " + imgs + " --image-backend opencv --out " + dir + "/x.npy");
  EXPECT_EQ(bad.status, 2);
  std::filesystem::remove_all(dir);
}

TEST(EmbedCli, BadInputsGetClearErrors) {
  auto r = run_clipkit("embed --model /nonexistent --text hi --out /tmp/x.npy");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("/nonexistent"), std::string::npos) << r.err;
  r = run_clipkit("embed --model " + data_path("models/tiny-clip") + " --out /tmp/x.npy");  // no input
  EXPECT_EQ(r.status, 2);
  auto dir = test::temp_dir("embed_bad");
  Tensor px = Tensor::zeros(DType::F32, {2, 3, 32, 32});
  write_npy(dir + "/px.npy", px);
  r = run_clipkit("embed --model " + data_path("models/tiny-clip") + " --pixels " + dir + "/px.npy --out " + dir + "/o.npy");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[N, 3, 64, 64]"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

// --device picks the compute backend; an unknown or unbuilt one is refused naming the built ones;
// in a CUDA build, `cuda` without a usable GPU is refused with the runtime's reason (no crash).
TEST(EmbedCli, DeviceIsChosenAndUnknownOnesAreRefused) {
  const std::string model = data_path("models/tiny-clip");
  auto dir = test::temp_dir("embed_device");
  std::string built;
  bool cuda_built = false;
  for (auto& d : backend::built_devices()) {
    built += (built.empty() ? "" : ", ") + d;
    cuda_built = cuda_built || d == "cuda";
  }
  auto r = run_clipkit("embed --model " + model + " --text hi --device cpu --out " + dir + "/o.npy");
  EXPECT_EQ(r.status, 0) << r.err;
  r = run_clipkit("embed --model " + model + " --text hi --device cuda --out " + dir + "/o.npy");
  if (!cuda_built) {
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--device cuda: this clipkit was built without the cuda backend (built: cpu)"),
              std::string::npos) << r.err;
  } else if (r.status != 0) {  // no GPU here
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--device cuda: no usable CUDA device ("), std::string::npos) << r.err;
  }
  r = run_clipkit("embed --model " + model + " --text hi --device tpu --out " + dir + "/o.npy");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--device tpu: unknown device (built: " + built + ")"), std::string::npos) << r.err;
  r = run_clipkit("embed --help");
  EXPECT_NE(r.out.find("--device"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

// Where the CPU has no bf16 or int8 matmul instructions (here: oneDNN held to AVX2) the commands say
// on stderr, once, that the precision runs as fp32 matmuls, and still embed; fp32 gets no note;
// bench embed's JSON carries the note ("" where native).
TEST(EmbedCli, EmulatedPrecisionIsNotedOnce) {
  const std::string model = data_path("models/tiny-clip");
  auto dir = test::temp_dir("precision_note");
  ::setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  auto i8 = run_clipkit("embed --model " + model + " --images " + data_path("images/chelsea.jpg") +
                        " --precision int8 --out " + dir + "/a.npy");
  auto bf = run_clipkit("embed --model " + model + " --text hi --precision bf16 --out " + dir + "/b.npy");
  auto f32 = run_clipkit("embed --model " + model + " --text hi --out " + dir + "/c.npy");
  auto bench = run_clipkit("bench embed --model " + model + " --precision int8 --batch-size 2 --iters 1 --json");
  ::unsetenv("DNNL_MAX_CPU_ISA");
  const auto count = [](const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  ASSERT_EQ(i8.status, 0) << i8.err;
  EXPECT_EQ(count(i8.err, "clipkit: note: --precision int8: this CPU has no VNNI instructions (oneDNN runs avx2): "
                          "int8 products run as fp32 matmuls of the int8 values, slower than fp32 precision here\n"), 1u)
      << i8.err;
  EXPECT_EQ(count(i8.err, "note:"), 1u) << i8.err;
  ASSERT_EQ(bf.status, 0) << bf.err;
  EXPECT_NE(bf.err.find("clipkit: note: --precision bf16: this CPU has no bf16 matmul instructions (AVX512_BF16 or "
                        "AMX; oneDNN runs avx2)"), std::string::npos) << bf.err;
  ASSERT_EQ(f32.status, 0) << f32.err;
  EXPECT_EQ(f32.err.find("note:"), std::string::npos) << f32.err;
  ASSERT_EQ(bench.status, 0) << bench.err;
  const auto j = nlohmann::json::parse(bench.out);
  EXPECT_NE(j.at("precision_note").get<std::string>().find("no VNNI instructions (oneDNN runs avx2)"), std::string::npos)
      << bench.out;
  // start-up figures: the model load, and the first batch (which prepares the weights) apart
  EXPECT_GT(j.at("load_s").get<double>(), 0.0) << bench.out;
  EXPECT_GE(j.at("image_first_batch_s").get<double>(), j.at("image_weight_prepare_s").get<double>()) << bench.out;
  EXPECT_GE(j.at("image_weight_prepare_s").get<double>(), 0.0) << bench.out;
  std::filesystem::remove_all(dir);
}

// CLIPKIT_CPU_BF16 takes native or fp32; another value is ignored, and a bf16 command says so once.
TEST(EmbedCli, UnknownBf16RouteOverrideIsReported) {
  const std::string model = data_path("models/tiny-clip");
  auto dir = test::temp_dir("bf16_override");
  ::setenv("CLIPKIT_CPU_BF16", "fp16", 1);
  auto bf = run_clipkit("embed --model " + model + " --text hi --precision bf16 --out " + dir + "/a.npy");
  auto f32 = run_clipkit("embed --model " + model + " --text hi --out " + dir + "/b.npy");
  ::setenv("CLIPKIT_CPU_BF16", "native", 1);
  auto known = run_clipkit("embed --model " + model + " --text hi --precision bf16 --out " + dir + "/c.npy");
  ::unsetenv("CLIPKIT_CPU_BF16");
  ASSERT_EQ(bf.status, 0) << bf.err;
  const std::string w = "clipkit: warning: CLIPKIT_CPU_BF16=fp16 ignored: it takes native or fp32\n";
  const size_t at = bf.err.find(w);
  EXPECT_NE(at, std::string::npos) << bf.err;
  EXPECT_EQ(bf.err.find(w, at + 1), std::string::npos) << bf.err;
  ASSERT_EQ(f32.status, 0) << f32.err;
  EXPECT_EQ(f32.err.find("CLIPKIT_CPU_BF16"), std::string::npos) << f32.err;  // fp32 does not read it
  ASSERT_EQ(known.status, 0) << known.err;
  EXPECT_EQ(known.err.find("warning"), std::string::npos) << known.err;
  std::filesystem::remove_all(dir);
}

TEST(EmbedCli, UnknownAttentionOverrideIsReported) {
  const std::string model = data_path("models/tiny-clip");
  auto dir = test::temp_dir("attention_override");
  ::setenv("CLIPKIT_CPU_ATTENTION", "fused", 1);
  auto odd = run_clipkit("embed --model " + model + " --text hi --out " + dir + "/a.npy");
  ::setenv("CLIPKIT_CPU_ATTENTION", "onednn", 1);
  auto known = run_clipkit("embed --model " + model + " --text hi --out " + dir + "/b.npy");
  ::unsetenv("CLIPKIT_CPU_ATTENTION");
  ASSERT_EQ(odd.status, 0) << odd.err;
  const std::string w = "clipkit: warning: CLIPKIT_CPU_ATTENTION=fused ignored: it takes onednn\n";
  const size_t at = odd.err.find(w);
  EXPECT_NE(at, std::string::npos) << odd.err;
  EXPECT_EQ(odd.err.find(w, at + 1), std::string::npos) << odd.err;
  ASSERT_EQ(known.status, 0) << known.err;
  EXPECT_EQ(known.err.find("warning"), std::string::npos) << known.err;
  std::filesystem::remove_all(dir);
}

// --version names each device built in and what it runs on; held to AVX2, the CPU line is followed
// by the two precisions it runs as fp32 matmuls.
TEST(VersionCli, NamesEachBuiltDeviceAndItsEmulatedPrecisions) {
  ::setenv("DNNL_MAX_CPU_ISA", "AVX2", 1);
  auto r = run_clipkit("--version");
  ::unsetenv("DNNL_MAX_CPU_ISA");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("clipkit 0.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\ncpu: oneDNN 2."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", ISA avx2\n  bf16: this CPU has no bf16 matmul instructions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  int8: this CPU has no VNNI instructions (oneDNN runs avx2)"), std::string::npos) << r.out;
  for (const auto& d : backend::built_devices())  // cuda: its GPU, or why there is none
    EXPECT_NE(r.out.find("\n" + d + ": "), std::string::npos) << d << "\n" << r.out;
}

TEST(InfoCli, DescribesBothCheckpoints) {
  auto r = run_clipkit("info " + data_path("models/tiny-clip") + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model_type"], "clip");
  EXPECT_EQ(j["projection_dim"], 48);
  EXPECT_EQ(j["weights_dtype"], "F32");
  EXPECT_GT(j["parameters"].get<int64_t>(), 3000000);
  r = run_clipkit("info " + data_path("models/tiny-clip-roberta"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("VisionTextDualEncoderModel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RoBERTa"), std::string::npos) << r.out;
}

TEST(InitCli, TinyArchitectureRoundTrips) {
  auto dir = test::temp_dir("init");
  auto r = run_clipkit("init --arch clip-tiny --out " + dir + "/m --seed 3");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json",
                        "special_tokens_map.json", "preprocessor_config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/m/" + f)) << f;
  r = run_clipkit("compare --model " + dir + "/m --images " + data_path("images/chelsea.jpg") + " --text cat --text dog --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  auto probs = j["images"][0]["probs"];
  EXPECT_NEAR(probs[0].get<double>() + probs[1].get<double>(), 1.0, 1e-9);
  r = run_clipkit("init --arch resnet50 --out " + dir + "/x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unknown architecture"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ConfigErrors, UnsupportedModelTypeIsClear) {
  auto dir = test::temp_dir("cfg");
  write_file_atomic(dir + "/config.json", R"({"model_type": "siglip"})");
  auto r = run_clipkit("info " + dir);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unsupported model_type \"siglip\""), std::string::npos) << r.err;
  write_file_atomic(dir + "/config.json", R"({"model_type": "clip", "vision_config": {}, "text_config": {"hidden_act": "swiglu"}})");
  r = run_clipkit("info " + dir);
  EXPECT_NE(r.err.find("unsupported hidden_act \"swiglu\""), std::string::npos) << r.err;
  write_file_atomic(dir + "/config.json", "{not json");
  r = run_clipkit("info " + dir);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
