// Dedup through an index (index_dedup.h): the list-by-list search finds the groups an exact
// all-pairs search finds -- pairs split across lists included -- for exact and compressed codes.
#include "apps/index_dedup.h"

#include <gtest/gtest.h>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "cli/cli_util.h"
#include "core/error.h"
#include "embeddings_util.h"
#include "index/shard_build.h"

namespace clipkit::apps {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kD = 32;

// 3000 clustered rows; rows 2000+2i are near copies of rows 2i (cosine ~0.97), and rows 2900..2909
// share content hashes in pairs.
struct Planted {
  std::string dir;
  std::vector<float> x;
  Planted() : dir(test::temp_dir("index_dedup")) {
    x = test::clustered_rows(3000, kD, 12, 9, 0.6f);
    std::mt19937 g(4);
    std::normal_distribution<float> nd;
    for (int64_t i = 0; i < 400; i += 2) {
      const float* a = x.data() + i * kD;
      float* b = x.data() + (2000 + i) * kD;
      double s = 0;
      for (int64_t j = 0; j < kD; ++j) s += std::pow(b[j] = a[j] + 0.25f * nd(g) / std::sqrt(float(kD)), 2);
      for (int64_t j = 0; j < kD; ++j) b[j] /= static_cast<float>(std::sqrt(s));
    }
    test::write_embeddings(dir + "/emb", x, kD, 700, [](int64_t i) -> uint64_t {
      return i >= 2900 && i < 2910 ? 1000 + static_cast<uint64_t>(i / 2) : 0;
    });
  }
  ~Planted() { fs::remove_all(dir); }
};

std::set<std::vector<std::string>> groups_of(const DedupResult& r, const std::vector<DedupItem>& items) {
  std::set<std::vector<std::string>> out;
  for (auto& gr : r.groups) {
    std::vector<std::string> m;
    for (int64_t i : gr.members) m.push_back(items[static_cast<size_t>(i)].path);
    out.insert(m);
  }
  return out;
}

DedupResult exact_groups(const Planted& d, double t, std::vector<DedupItem>* items) {
  items->clear();
  for (int64_t i = 0; i < 3000; ++i) {
    DedupItem it;
    it.path = "/synthetic/img-" + std::to_string(i) + ".jpg";
    it.hash = i >= 2900 && i < 2910 ? 1000 + static_cast<uint64_t>(i / 2) : 0;
    items->push_back(it);
  }
  DedupOptions o;
  o.threshold = t;
  return find_duplicates(*items, d.x.data(), kD, o);
}

TEST(IndexDedup, ListByListEqualsAllPairsAcrossListBoundaries) {
  Planted d;
  std::vector<DedupItem> all;
  const double t = 0.95;
  const auto want = groups_of(exact_groups(d, t, &all), all);
  ASSERT_GE(want.size(), 100u);
  for (const char* factory : {"IVF16,Flat", "IVF16,SQ8", "IDMap,Flat"}) {
    index::ShardBuildOptions bo;
    bo.factory = factory;
    std::string name = factory;
    std::replace(name.begin(), name.end(), ',', '_');
    const std::string idx = d.dir + "/idx-" + name;
    index::build_index_from_embeddings(idx, d.dir + "/emb", test::synthetic_model(kD), bo);
    auto lib = index::Library::open(idx);
    ASSERT_TRUE(can_dedup_from_embeddings(*lib));
    if (auto* ivf = faiss::ivflib::try_extract_index_ivf(lib->vectors().raw())) {
      // the data puts some planted pairs in different lists: the test covers the visits
      std::vector<int64_t> a(1), b(1);
      std::vector<float> da(1);
      int split = 0;
      for (int64_t i = 0; i < 400; i += 2) {
        ivf->quantizer->assign(1, d.x.data() + i * kD, a.data());
        ivf->quantizer->assign(1, d.x.data() + (2000 + i) * kD, b.data());
        split += a[0] != b[0];
      }
      EXPECT_GT(split, 3) << factory;
    }
    IndexDedupOptions o;
    o.threshold = t;
    auto c = dedup_candidates(*lib, o);
    EXPECT_EQ(c.rows, 3000);
    EXPECT_EQ(c.hash_pairs, 5);
    EXPECT_LT(c.scan.items.size(), 3000u);  // only the members were loaded
    auto r = find_duplicates(c.scan.items, c.scan.emb.ptr<float>(), kD, {t});
    EXPECT_EQ(groups_of(r, c.scan.items), want) << factory;
    // visiting only their own list loses pairs split across lists
    if (std::string(factory) == "IVF16,Flat") {
      o.nprobe = 1;
      auto one = dedup_candidates(*lib, o);
      EXPECT_LT(one.verified_pairs, c.verified_pairs);
    }
  }
}

TEST(IndexDedup, RefusesAnIndexWithoutItsEmbeddings) {
  Planted d;
  index::ShardBuildOptions bo;
  bo.factory = "IVF8,Flat";
  index::build_index_from_embeddings(d.dir + "/idx", d.dir + "/emb", test::synthetic_model(kD), bo);
  index::build_index_from_embeddings(d.dir + "/changed", d.dir + "/emb", test::synthetic_model(kD), bo);
  auto changed = index::Library::open(d.dir + "/changed");
  EXPECT_TRUE(can_dedup_from_embeddings(*changed));
  changed->remove({5});  // no longer the embeddings' rows: dedup falls back to the stored vectors
  EXPECT_FALSE(can_dedup_from_embeddings(*changed));
  fs::rename(d.dir + "/emb", d.dir + "/gone");
  auto lib = index::Library::open(d.dir + "/idx");
  EXPECT_FALSE(can_dedup_from_embeddings(*lib));
  EXPECT_THROW(dedup_candidates(*lib, {}), Error);
}

}  // namespace
}  // namespace clipkit::apps
