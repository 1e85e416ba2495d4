#include "apps/dedup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "apps/synthetic.h"
#include "apps_test_util.h"
#include "core/error.h"

namespace clipkit {
namespace {

std::vector<float> random_unit_rows(int64_t N, int64_t D, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n;
  std::vector<float> x(static_cast<size_t>(N * D));
  for (auto& v : x) v = n(g);
  model::l2_normalize_rows(x.data(), N, D);
  return x;
}

// Row j becomes a small perturbation of row i.
void plant(std::vector<float>& x, int64_t D, int64_t i, int64_t j, float eps, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n;
  for (int64_t d = 0; d < D; ++d) x[j * D + d] = x[i * D + d] + eps * n(g);
  model::l2_normalize_rows(x.data() + j * D, 1, D);
}

TEST(RangePairs, MatchesBruteForceForEveryBlockSize) {
  const int64_t N = 300, D = 16;
  auto x = random_unit_rows(N, D, 1);
  for (int k = 0; k < 40; ++k) plant(x, D, k * 7, k * 7 + 3, 0.02f + 0.005f * k, 100 + k);
  const double th = 0.85;
  std::vector<std::pair<int64_t, int64_t>> want;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = i + 1; j < N; ++j)
      if (apps::dot_exact(&x[i * D], &x[j * D], D) >= th) want.push_back({i, j});
  ASSERT_GT(want.size(), 20u);
  for (int64_t block : {37, 64, 299, 300, 2048}) {
    auto got = apps::range_pairs(x.data(), N, D, th, block);
    std::vector<std::pair<int64_t, int64_t>> g;
    for (auto& p : got) {
      g.push_back({p.i, p.j});
      EXPECT_NEAR(p.score, apps::dot_exact(&x[p.i * D], &x[p.j * D], D), 1e-12);
      EXPECT_GE(p.score, th);
    }
    EXPECT_EQ(g, want) << "block " << block;
  }
}

TEST(RangePairs, BetweenTwoSets) {
  const int64_t D = 12;
  auto a = random_unit_rows(50, D, 2), b = random_unit_rows(70, D, 3);
  std::copy_n(&a[5 * D], D, &b[60 * D]);  // b[60] == a[5]
  auto got = apps::range_pairs_between(a.data(), 50, b.data(), 70, D, 0.999, 16);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].i, 5);
  EXPECT_EQ(got[0].j, 60);
  EXPECT_THROW(apps::range_pairs(a.data(), 50, D, 0.9, 0), Error);
}

TEST(TopK, BestFirstWithFilter) {
  const int64_t D = 8;
  auto x = random_unit_rows(100, D, 4);
  const float* q = &x[42 * D];
  auto hits = apps::top_k(x.data(), 100, D, q, 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].row, 42);
  EXPECT_NEAR(hits[0].score, 1.0, 1e-6);
  EXPECT_GE(hits[1].score, hits[2].score);
  auto odd = apps::top_k(x.data(), 100, D, q, 200, [](int64_t r) { return r % 2 == 1; });
  EXPECT_EQ(odd.size(), 50u);
  for (auto& h : odd) EXPECT_EQ(h.row % 2, 1);
}

// Items + embeddings with a known structure:
//   0,1: byte-identical (exact group)            2,3,4: near chain 2~3, 3~4 (2 vs 4 below threshold)
//   5 (train), 6 (val): near copies across splits  7: unique        8: same hash as 0 but different bytes
struct Fixture {
  std::vector<apps::DedupItem> items;
  std::vector<float> emb;
  int64_t D = 4;
  Fixture() {
    auto item = [&](std::string p, uint64_t h, int w, std::string split = "train") {
      apps::DedupItem it;
      it.path = p, it.hash = h, it.bytes = 1000 + w, it.width = w, it.height = w, it.split = split;
      items.push_back(it);
    };
    item("a.jpg", 11, 100);
    item("a_copy.jpg", 11, 100);
    item("b.jpg", 22, 50);
    item("b_mid.jpg", 23, 80);
    item("b_far.jpg", 24, 60);
    item("c_train.jpg", 31, 90, "train");
    item("c_val.jpg", 32, 40, "val");
    item("d.jpg", 41, 70);
    item("collide.jpg", 11, 10);
    auto row = [&](std::vector<float> v) { emb.insert(emb.end(), v.begin(), v.end()); };
    const float c = std::cos(0.25f), s = std::sin(0.25f);  // 2~3 and 3~4 at cos 0.969, 2~4 at cos(0.5)=0.878
    row({1, 0, 0, 0});
    row({1, 0, 0, 0});
    row({0, 1, 0, 0});
    row({0, c, s, 0});
    row({0, std::cos(0.5f), std::sin(0.5f), 0});
    row({0, 0, 0, 1});
    row({0, 0, 0.1f, 0.995f});
    row({-0.6f, -0.8f, 0, 0});
    row({0.70710678f, -0.70710678f, 0, 0});
    model::l2_normalize_rows(emb.data(), static_cast<int64_t>(items.size()), D);
  }
};

TEST(FindDuplicates, GroupsKindsKeepAndLeakage) {
  Fixture f;
  apps::DedupOptions o;
  o.threshold = 0.95;
  auto same = [&](int64_t i, int64_t j) { return f.items[i].path.substr(0, 1) == f.items[j].path.substr(0, 1); };
  auto r = apps::find_duplicates(f.items, f.emb.data(), f.D, o, same);
  EXPECT_EQ(r.images, 9);
  EXPECT_EQ(r.exact_pairs, 1);  // 0-1 only: 8 shares the hash but not the bytes
  ASSERT_EQ(r.groups.size(), 3u);
  EXPECT_EQ(r.groups[0].kind, "exact");
  EXPECT_EQ(r.groups[0].members, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(r.groups[0].min_similarity, 1.0);
  EXPECT_EQ(r.groups[0].keep, 0);  // equal size and bytes: first path
  EXPECT_EQ(r.groups[1].kind, "near");
  EXPECT_EQ(r.groups[1].members, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(r.groups[1].keep, 3);  // most pixels
  EXPECT_NEAR(r.groups[1].min_similarity, std::cos(0.5), 1e-6);  // the chain's ends, not an edge
  EXPECT_EQ(r.groups[2].members, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(r.groups[2].keep, 6);  // the val copy is protected even though it is smaller
  ASSERT_EQ(r.cross_split.size(), 1u);
  EXPECT_EQ(r.cross_split[0].members, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(r.cross_split[0].splits, (std::vector<std::string>{"train", "val"}));
  EXPECT_EQ(r.removals(), (std::vector<int64_t>{1, 2, 4, 5}));
  // A higher threshold splits the chain; a lower one (0.85) joins 2 and 4 directly.
  o.threshold = 0.97;
  EXPECT_EQ(apps::find_duplicates(f.items, f.emb.data(), f.D, o, same).groups.size(), 2u);
  o.threshold = 2;
  EXPECT_THROW(apps::find_duplicates(f.items, f.emb.data(), f.D, o), Error);
}

TEST(FindDuplicates, ReportJsonContract) {
  Fixture f;
  apps::DedupOptions o;
  auto r = apps::find_duplicates(f.items, f.emb.data(), f.D, o);
  auto j = apps::dedup_report_json(r, f.items, o.threshold);
  ASSERT_TRUE(j["groups"].is_array());
  EXPECT_EQ(j["images"], 9);
  for (auto& g : j["groups"]) {
    EXPECT_TRUE(g["kind"] == "exact" || g["kind"] == "near");
    EXPECT_TRUE(g["members"].is_array());
    EXPECT_TRUE(g["keep"].is_string());
    EXPECT_TRUE(g["min_similarity"].is_number());
  }
  ASSERT_EQ(j["cross_split"].size(), 1u);
  EXPECT_EQ(j["cross_split"][0]["members"], (nlohmann::json{"c_train.jpg", "c_val.jpg"}));
  EXPECT_EQ(j["cross_split"][0]["splits"], (nlohmann::json{"train", "val"}));
}

TEST(DedupReport, HtmlIsSelfContained) {
  const std::string img = std::string(CLIPKIT_TEST_DATA) + "/images/chelsea.jpg";
  std::vector<apps::DedupItem> items(2);
  items[0].path = img, items[1].path = "/nonexistent/<x>.jpg";
  items[0].hash = items[1].hash = 5;
  apps::DedupResult r;
  r.images = 2;
  r.groups.push_back({"exact", {0, 1}, 0, 1.0});
  auto h = apps::dedup_report_html(r, items, 0.95);
  EXPECT_NE(h.find("<img src=\"data:image/jpeg;base64,/9j/"), std::string::npos);
  EXPECT_EQ(h.find("src=\"http"), std::string::npos);
  EXPECT_EQ(h.find("src=\"/"), std::string::npos);
  EXPECT_NE(h.find("&lt;x&gt;"), std::string::npos);  // escaped, and the unreadable file is reported inline
}

// Known answers on generated images with the tiny random-weight checkpoint. Random features see
// colour layout, not semantics, so this set's hard negatives (same palette, new composition) sit
// close; the threshold for this model is measured (bench/apps_bench --quality), not the default.
TEST(DedupKnownAnswer, TinyClipPrecisionRecall) {
  auto dir = test::apps_temp_dir("dedup_known");
  auto set = apps::synthetic::make_dedup_set(dir, 12, 6, 160, 120, 5);
  std::ofstream(dir + "/zz_broken.jpg") << "not an image";
  auto emb = pipeline::Embedder::load(test::tiny_clip());
  apps::EmbedderEncoder enc(*emb);
  std::vector<apps::ScanInput> in;
  for (auto& p : apps::list_image_files(dir)) in.push_back({p, ""});
  ASSERT_EQ(in.size(), set.files.size() + 1);
  auto s = apps::scan_images(in, enc, 16);
  ASSERT_EQ(s.skipped.size(), 1u);
  EXPECT_NE(s.skipped[0].reason.find("zz_broken.jpg"), std::string::npos);
  ASSERT_EQ(s.items.size(), set.files.size());
  apps::DedupOptions o;
  o.threshold = 0.99;
  auto r = apps::find_duplicates(s.items, s.emb.ptr<float>(), s.emb.dim(1), o,
                                 [&](int64_t a, int64_t b) { return apps::files_equal(s.items[a].path, s.items[b].path); });
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < set.files.size(); ++i) index[set.files[i]] = i;
  std::vector<int> group(s.items.size(), -1);
  for (size_t g = 0; g < r.groups.size(); ++g)
    for (int64_t m : r.groups[g].members) group[static_cast<size_t>(m)] = static_cast<int>(g);
  int64_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < s.items.size(); ++i)
    for (size_t j = i + 1; j < s.items.size(); ++j) {
      const bool truth = set.family[index[s.items[i].path]] == set.family[index[s.items[j].path]];
      const bool pred = group[i] >= 0 && group[i] == group[j];
      tp += truth && pred, fp += !truth && pred, fn += truth && !pred;
    }
  const double precision = double(tp) / double(tp + fp), recall = double(tp) / double(tp + fn);
  std::printf("  tiny-clip @0.99 on %zu images: pair precision %.3f recall %.3f, %zu groups\n", s.items.size(),
              precision, recall, r.groups.size());
  EXPECT_GE(precision, 0.85);
  EXPECT_GE(recall, 0.75);
  EXPECT_EQ(r.exact_pairs, 12);  // one byte copy per family, confirmed byte for byte
  for (size_t i = 0; i < set.files.size(); ++i)
    if (set.transform[i] == "exact" || set.transform[i] == "resized" || set.transform[i] == "recompressed") {
      // the copies random features cannot miss are always grouped with their original
      auto& orig = set.files[i - (set.transform[i] == "exact" ? 1 : set.transform[i] == "resized" ? 2 : 3)];
      size_t a = 0, b = 0;
      for (size_t k = 0; k < s.items.size(); ++k) {
        if (s.items[k].path == orig) a = k;
        if (s.items[k].path == set.files[i]) b = k;
      }
      EXPECT_TRUE(group[a] >= 0 && group[a] == group[b]) << set.files[i];
    }
}

TEST(Dedup, ListImageFilesAndErrors) {
  auto dir = test::apps_temp_dir("dedup_list");
  std::filesystem::create_directories(dir + "/sub");
  std::ofstream(dir + "/b.JPG") << "x";
  std::ofstream(dir + "/sub/a.png") << "x";
  std::ofstream(dir + "/notes.txt") << "x";
  auto l = apps::list_image_files(dir);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0], dir + "/b.JPG");
  EXPECT_EQ(l[1], dir + "/sub/a.png");
  EXPECT_THROW(apps::list_image_files(dir + "/missing"), Error);
  EXPECT_NE(apps::content_hash(reinterpret_cast<const uint8_t*>("abc"), 3),
            apps::content_hash(reinterpret_cast<const uint8_t*>("abd"), 3));
  EXPECT_TRUE(apps::files_equal(dir + "/b.JPG", dir + "/sub/a.png"));
  EXPECT_FALSE(apps::files_equal(dir + "/b.JPG", dir + "/notes.txt.missing"));
}

}  // namespace
}  // namespace clipkit
