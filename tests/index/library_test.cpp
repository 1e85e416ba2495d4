// The index folder: build / open / search with filters / add / remove, generations that survive a
// crash mid-write, and refusing queries from another model.
#include "index/library.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "cli/cli_util.h"
#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit::index {
namespace {

namespace fs = std::filesystem;

pipeline::ModelIdentity fake_model(const std::string& cfg = "c1") {
  pipeline::ModelIdentity m;
  m.dir = "/models/x";
  m.config_hash = cfg;
  m.weights_hash = "w1";
  m.dim = 8;
  return m;
}

Tensor unit_rows(int64_t n, uint32_t seed) {
  Tensor t = Tensor::empty(DType::F32, {n, 8});
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int c = 0; c < 8; ++c) s += std::pow(t.ptr<float>()[i * 8 + c] = nd(g), 2);
    for (int c = 0; c < 8; ++c) t.ptr<float>()[i * 8 + c] /= static_cast<float>(std::sqrt(s));
  }
  return t;
}

std::vector<ImageRecord> records(int64_t n, const std::string& prefix) {
  std::vector<ImageRecord> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto& x = r[static_cast<size_t>(i)];
    x.relpath = (i % 2 ? "cats/" : "cat/") + prefix + std::to_string(i) + ".jpg";
    x.path = "/data/" + x.relpath;
    x.split = i % 3 == 0 ? "val" : "train";
    x.captions = {"caption " + std::to_string(i)};
    x.width = 10 + static_cast<int>(i);
  }
  return r;
}

TEST(Library, BuildSearchFilterAddRemove) {
  auto dir = test::temp_dir("lib_basic") + "/idx";
  Tensor x = unit_rows(40, 1);
  auto recs = records(40, "a");
  recs[5].path = recs[4].path;  // a duplicate path keeps its first row only
  EXPECT_EQ(Library::build(dir, fake_model(), x, recs, {}), 39);
  EXPECT_THROW(Library::build(dir, fake_model(), x, recs, {}), Error);  // no silent overwrite
  auto lib = Library::open(dir);
  EXPECT_EQ(lib->info().count, 39);
  EXPECT_EQ(lib->info().factory, "IDMap,Flat");
  auto hits = lib->search(x.ptr<float>() + 7 * 8, 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].id, 6);  // row 7 got id 6 (row 5 was the duplicate)
  EXPECT_NEAR(hits[0].score, 1.0f, 1e-5);
  EXPECT_EQ(hits[0].record.captions[0], "caption 7");
  EXPECT_GE(hits[0].score, hits[1].score);
  // filters: split, and folder on a '/' boundary ("cat" is not a prefix of "cats/...")
  Filter f;
  f.split = "val";
  for (auto& h : lib->search(x.ptr<float>(), 50, f)) EXPECT_EQ(h.record.split, "val");
  Filter g;
  g.folder = "cat";
  auto in_cat = lib->search(x.ptr<float>(), 50, g);
  EXPECT_EQ(in_cat.size(), 20u);
  for (auto& h : in_cat) EXPECT_TRUE(h.record.relpath.starts_with("cat/")) << h.record.relpath;
  g.folder = "/data/cats/";
  EXPECT_EQ(lib->search(x.ptr<float>(), 50, g).size(), 19u);
  Filter none;
  none.split = "test";
  EXPECT_TRUE(lib->search(x.ptr<float>(), 5, none).empty());

  // add: new paths get new ids, known paths are skipped
  Tensor y = unit_rows(5, 2);
  auto more = records(5, "b");
  more[0].path = recs[0].path;
  EXPECT_EQ(lib->add(y, more), 4);
  EXPECT_EQ(lib->info().count, 43);
  EXPECT_EQ(lib->info().generation, 2);
  auto h2 = lib->search(y.ptr<float>() + 8, 1);
  EXPECT_EQ(h2[0].id, 39);  // ids continue after the build's 0..38
  // remove
  EXPECT_EQ(lib->remove({39, 0, 12345}), 2);
  EXPECT_EQ(lib->info().count, 41);
  for (auto& h : lib->search(y.ptr<float>() + 8, 41)) EXPECT_NE(h.id, 39);
  // what is on disk agrees, and old generations are gone
  auto again = Library::open(dir);
  EXPECT_EQ(again->info().count, 41);
  EXPECT_EQ(again->info().generation, 3);
  EXPECT_FALSE(fs::exists(dir + "/index.000001.faiss"));
  EXPECT_TRUE(fs::exists(dir + "/index.faiss"));  // symlink to the current generation
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(Library, CrashMidWriteLeavesThePreviousGenerationInUse) {
  auto dir = test::temp_dir("lib_crash") + "/idx";
  Tensor x = unit_rows(10, 3);
  Library::build(dir, fake_model(), x, records(10, "a"), {});
  // a writer died after writing part of generation 2 but before switching index.json
  write_file_atomic(dir + "/index.000002.faiss", "half a faiss file");
  write_file_atomic(dir + "/meta.000002.sqlite.tmp", "half a database");
  auto lib = Library::open(dir);
  EXPECT_EQ(lib->info().generation, 1);
  EXPECT_EQ(lib->info().count, 10);
  EXPECT_EQ(lib->search(x.ptr<float>() + 16, 1)[0].id, 2);
  // the next write replaces the debris
  EXPECT_EQ(lib->add(unit_rows(1, 4), records(1, "z")), 1);
  EXPECT_EQ(Library::open(dir)->info().count, 11);
  EXPECT_FALSE(fs::exists(dir + "/meta.000002.sqlite.tmp"));
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(Library, RefusesAnotherModelAndBrokenFolders) {
  auto dir = test::temp_dir("lib_model") + "/idx";
  Library::build(dir, fake_model(), unit_rows(4, 5), records(4, "a"), {});
  auto lib = Library::open(dir);
  EXPECT_NO_THROW(lib->check_model(fake_model()));
  try {
    lib->check_model(fake_model("c2"));
    FAIL() << "expected a model mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("this index was built with model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Library::open(fs::path(dir).parent_path().string() + "/nothing"), Error);
  write_file_atomic(dir + "/index.json", "{not json");
  EXPECT_THROW(Library::open(dir), Error);
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(Library, ApproximateStructureFromFactoryString) {
  auto dir = test::temp_dir("lib_ivf") + "/idx";
  Tensor x = unit_rows(2000, 6);
  BuildOptions o;
  o.factory = "IVF16,Flat";
  Library::build(dir, fake_model(), x, records(2000, "a"), o);
  auto lib = Library::open(dir);
  EXPECT_EQ(lib->info().factory, "IVF16,Flat");
  EXPECT_EQ(lib->search(x.ptr<float>() + 8 * 100, 1)[0].id, 100);
  EXPECT_EQ(lib->remove({100}), 1);
  EXPECT_NE(lib->search(x.ptr<float>() + 8 * 100, 1)[0].id, 100);
  fs::remove_all(fs::path(dir).parent_path());
}

// export_vectors gives every stored row back with its record, in id order, for exact (IDMap) and
// inverted-file structures alike (what `dedup --index` reads).
TEST(Library, ExportsStoredVectorsInIdOrder) {
  for (std::string factory : {"", "IVF16,Flat", "IVF8,SQ8"}) {
    SCOPED_TRACE(factory);
    auto dir = test::temp_dir("lib_export") + "/idx";
    Tensor x = unit_rows(600, 9);
    BuildOptions o;
    o.factory = factory;
    Library::build(dir, fake_model(), x, records(600, "a"), o);
    auto lib = Library::open(dir);
    ASSERT_EQ(lib->remove({3, 77}), 2);
    std::vector<ImageRecord> recs;
    Tensor y = lib->export_vectors(&recs);
    ASSERT_EQ(y.dim(0), 598);
    ASSERT_EQ(recs.size(), 598u);
    const float tol = factory == "IVF8,SQ8" ? 6e-2f : 0.f;  // SQ8 stores 8-bit codes (of residuals)
    for (size_t r = 0; r < recs.size(); ++r) {
      const int64_t id = recs[r].id;
      ASSERT_NE(id, 3);
      ASSERT_NE(id, 77);
      if (r) {
        ASSERT_GT(id, recs[r - 1].id);
      }
      EXPECT_EQ(recs[r].captions[0], "caption " + std::to_string(id));  // ids 0..599 follow the rows
      for (int c = 0; c < 8; ++c)
        ASSERT_NEAR(y.ptr<float>()[r * 8 + c], x.ptr<float>()[id * 8 + c], tol) << "id " << id << " col " << c;
    }
    fs::remove_all(fs::path(dir).parent_path());
  }
}

}  // namespace
}  // namespace clipkit::index
