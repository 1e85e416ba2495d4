// safetensors reading/writing, including a malformed-file suite: each bad file must get an Error
// that names the file and the problem (never a crash; this suite also runs under ASan).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clipkit_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  // Writes a file from a raw header string and `data_bytes` bytes of data.
  std::string raw(const std::string& name, const std::string& header, size_t data_bytes, int64_t len_override = -1) {
    std::string s;
    uint64_t n = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
    s.append(reinterpret_cast<const char*>(&n), 8);
    s += header;
    s.append(data_bytes, '\0');
    write_file_atomic(path(name), s);
    return path(name);
  }
  void expect_error(const std::string& file, const std::string& what) {
    try {
      SafeTensorsFile f(file);
      FAIL() << "no error for " << what;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << "message does not name the file: " << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
    }
  }
  fs::path dir_;
};

TEST_F(SafeTensorsTest, RoundTripAllDtypes) {
  std::vector<std::pair<std::string, Tensor>> ts;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32, DType::U8}) {
    Tensor x = Tensor::empty(t, {2, 3});
    for (size_t i = 0; i < x.nbytes(); ++i) static_cast<uint8_t*>(x.data)[i] = static_cast<uint8_t>(i * 7 + 1);
    ts.emplace_back(std::string("t_") + dtype_name(t), x);
  }
  Tensor scalar = Tensor::empty(DType::F32, {});
  *scalar.ptr<float>() = 2.5f;
  ts.emplace_back("scalar", scalar);
  write_safetensors(path("a.safetensors"), ts, {{"format", "pt"}});
  SafeTensorsFile f(path("a.safetensors"));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (auto& [name, t] : ts) {
    const Tensor& g = f.get(name);
    EXPECT_EQ(g.dtype, t.dtype);
    EXPECT_EQ(g.shape, t.shape);
    EXPECT_EQ(std::memcmp(g.data, t.data, t.nbytes()), 0) << name;
  }
  EXPECT_FLOAT_EQ(f.get("scalar").to_f32().ptr<float>()[0], 2.5f);
  EXPECT_THROW(f.get("missing"), Error);
}

TEST_F(SafeTensorsTest, ConvertsHalfAndBfloat) {
  Tensor h = Tensor::empty(DType::F16, {3});
  Tensor b = Tensor::empty(DType::BF16, {3});
  const float vals[3] = {1.5f, -0.099975586f, 65504.0f};
  for (int i = 0; i < 3; ++i) {
    h.ptr<uint16_t>()[i] = f32_to_f16(vals[i]);
    b.ptr<uint16_t>()[i] = f32_to_bf16(vals[i]);
  }
  Tensor hf = h.to_f32(), bf = b.to_f32();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(hf.ptr<float>()[i], vals[i]);
    EXPECT_NEAR(bf.ptr<float>()[i], vals[i], std::fabs(vals[i]) / 128);
  }
}

// Issue 14: weights holding NaN gave NaN embeddings with exit 0; now loading names the tensor.
TEST_F(SafeTensorsTest, NonFiniteWeightsAreNamed) {
  Tensor good = Tensor::zeros(DType::F32, {4, 4}), bad = Tensor::zeros(DType::BF16, {3});
  bad.ptr<uint16_t>()[2] = 0x7fc0;  // bf16 NaN
  fs::create_directories(path("ck"));
  write_safetensors(path("ck/model.safetensors"), {{"a.weight", good}, {"b.bias", bad}});
  Checkpoint ck(path("ck"));
  try {
    ck.require_finite();
    FAIL() << "NaN not found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"b.bias\" holds NaN or infinity at element 2"), std::string::npos) << e.what();
  }
  good.ptr<float>()[5] = std::numeric_limits<float>::infinity();
  write_safetensors(path("ck/model.safetensors"), {{"a.weight", good}});
  EXPECT_THROW(Checkpoint(path("ck")).require_finite(), Error);
  good.ptr<float>()[5] = 1e30f;
  write_safetensors(path("ck/model.safetensors"), {{"a.weight", good}});
  EXPECT_NO_THROW(Checkpoint(path("ck")).require_finite());
}

// The scan runs in blocks over threads: the first bad element is the one named, in every dtype,
// and the largest finite values, subnormals and negative zero pass.
TEST_F(SafeTensorsTest, FirstNonFiniteElementIsNamedAcrossBlocks) {
  const int64_t n = 300000;  // several 4096-element blocks and 65536-element thread chunks
  auto check = [&](Tensor t, const std::string& want) {
    write_safetensors(path("ck/model.safetensors"), {{"w", t}});
    try {
      Checkpoint(path("ck")).require_finite();
      EXPECT_EQ(want, "") << "nothing found";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(want, "") << e.what();
    }
  };
  fs::create_directories(path("ck"));
  Tensor f = Tensor::zeros(DType::F32, {n});
  f.ptr<float>()[1] = std::numeric_limits<float>::max();
  f.ptr<float>()[2] = -std::numeric_limits<float>::max();
  f.ptr<float>()[3] = std::numeric_limits<float>::denorm_min();
  f.ptr<float>()[4] = -0.0f;
  check(f, "");
  f.ptr<float>()[270001] = std::numeric_limits<float>::quiet_NaN();
  f.ptr<float>()[150001] = -std::numeric_limits<float>::infinity();
  check(f, "at element 150001");
  Tensor d = Tensor::zeros(DType::F64, {n});
  d.ptr<double>()[1] = std::numeric_limits<double>::max();
  check(d, "");
  d.ptr<double>()[n - 1] = std::numeric_limits<double>::infinity();
  check(d, "at element 299999");
  Tensor h = Tensor::zeros(DType::F16, {n});
  h.ptr<uint16_t>()[7] = 0x7bff;  // the largest finite half
  check(h, "");
  h.ptr<uint16_t>()[70000] = 0xfc00;  // -inf
  check(h, "at element 70000");
  Tensor b = Tensor::zeros(DType::BF16, {n});
  b.ptr<uint16_t>()[9] = 0x7f7f;  // the largest finite bfloat16
  check(b, "");
  b.ptr<uint16_t>()[4096] = 0xffc1;  // a negative NaN
  check(b, "at element 4096");
}

TEST_F(SafeTensorsTest, BytesInMemoryAreValidatedTheSameWay) {
  std::string s = read_file(raw("x.safetensors", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8));
  EXPECT_EQ(SafeTensorsFile::from_bytes(s, "mem").get("a").numel(), 2);
  try {
    SafeTensorsFile::from_bytes(s.substr(0, 20), "mem");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mem: header length"), std::string::npos) << e.what();
  }
  // a header nested deeper than JSON's bound is an error, not a stack overflow
  std::string deep(100000, '[');
  EXPECT_THROW(SafeTensorsFile::from_bytes(std::string("\xa0\x86\x01\0\0\0\0\0", 8) + deep, "mem"), Error);
}

TEST_F(SafeTensorsTest, ShardedCheckpoint) {
  Tensor a = Tensor::zeros(DType::F32, {4}), b = Tensor::zeros(DType::F32, {2, 2});
  a.ptr<float>()[0] = 1;
  b.ptr<float>()[3] = 2;
  write_safetensors(path("model-00001-of-00002.safetensors"), {{"a", a}});
  write_safetensors(path("model-00002-of-00002.safetensors"), {{"b", b}});
  nlohmann::json idx = {{"metadata", {{"total_size", 32}}},
                        {"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}};
  write_file_atomic(path("model.safetensors.index.json"), idx.dump());
  Checkpoint ck(dir_.string());
  EXPECT_EQ(ck.get("a").ptr<float>()[0], 1);
  EXPECT_EQ(ck.get("b").ptr<float>()[3], 2);
  EXPECT_THROW(ck.get("c"), Error);
}

TEST_F(SafeTensorsTest, ShardIndexNamesMissingTensor) {
  write_safetensors(path("s1.safetensors"), {{"a", Tensor::zeros(DType::F32, {1})}});
  write_file_atomic(path("model.safetensors.index.json"), R"({"weight_map": {"zz": "s1.safetensors"}})");
  try {
    Checkpoint ck(dir_.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"zz\""), std::string::npos) << e.what();
  }
}

TEST_F(SafeTensorsTest, MissingFolderAndFiles) {
  EXPECT_THROW(Checkpoint((dir_ / "nope").string()), Error);
  EXPECT_THROW(Checkpoint(dir_.string()), Error);  // empty folder
  expect_error(path("absent.safetensors"), "cannot open");
}

TEST_F(SafeTensorsTest, Malformed) {
  expect_error(raw("empty.safetensors", "", 0, 0), "header");
  write_file_atomic(path("short.safetensors"), "abc");
  expect_error(path("short.safetensors"), "shorter than the 8-byte header");
  expect_error(raw("badjson.safetensors", "{\"a\": {\"dtype\": ", 0), "not valid JSON");
  expect_error(raw("notobj.safetensors", "[1, 2]", 0), "JSON object");
  expect_error(raw("hugelen.safetensors", "{}", 0, int64_t{1} << 40), "100 MB limit");
  expect_error(raw("pastend.safetensors", "{}", 0, 1000), "past the end");
  expect_error(raw("dtype.safetensors", R"({"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}})", 8),
               "unsupported dtype");
  expect_error(raw("range.safetensors", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8),
               "out of range");
  expect_error(raw("size.safetensors", R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", 16),
               "needs 12");
  expect_error(raw("f16size.safetensors", R"({"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 16]}})", 16),
               "needs 8");
  expect_error(raw("overlap.safetensors",
                   R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
               "overlap");
  expect_error(raw("reversed.safetensors", R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8),
               "end 4 < begin 8");
  expect_error(raw("negshape.safetensors", R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 8),
               "non-negative");
  expect_error(raw("offsets.safetensors", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 8),
               "data_offsets");
  expect_error(raw("meta.safetensors", R"({"__metadata__": {"k": 1}})", 0), "__metadata__");
  expect_error(raw("overflow.safetensors",
                   R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8),
               "overflows");
  // a 0 dimension does not excuse the others (npy's stop 26 fuzz find): 2^32 (2^32 - 1) fits the
  // unsigned check but overflowed numel()'s signed product; a leading 0 hid any product after it
  const std::pair<const char*, const char*> zero_size[] = {{"[4294967296, 4294967295, 0]", "overflows"},
                                                           {"[0, 4294967296, 4294967296]", "overflows"},
                                                           {"[0, 18446744073709551615]", "too large"}};
  for (const auto& [shape, says] : zero_size)
    expect_error(raw("zero.safetensors",
                     std::string(R"({"a": {"dtype": "F32", "shape": )") + shape + R"(, "data_offsets": [0, 0]}})", 0),
                 says);
}

TEST_F(SafeTensorsTest, TruncatedRealCheckpoint) {
  std::string src = std::string(CLIPKIT_TEST_DATA) + "/models/tiny-clip/model.safetensors";
  std::string bytes = read_file(src);
  write_file_atomic(path("trunc.safetensors"), bytes.substr(0, bytes.size() / 2));
  expect_error(path("trunc.safetensors"), "out of range");
}

TEST_F(SafeTensorsTest, AtomicWriteLeavesNoTempOnFailure) {
  {
    AtomicFile f(path("x.bin"));
    f.write("partial");
  }  // destroyed without commit
  EXPECT_FALSE(fs::exists(path("x.bin")));
  for (auto& e : fs::directory_iterator(dir_)) ADD_FAILURE() << "leftover " << e.path();
}

}  // namespace
}  // namespace clipkit
