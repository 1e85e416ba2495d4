#include "apps/dedup.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "apps/synthetic.h"
#include "apps_test_util.h"
#include "core/error.h"
#include "image/encode.h"
#include "io/atomic_file.h"

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
  apps::DupGroup g;
  g.kind = "exact", g.members = {0, 1}, g.keep = 0;
  r.groups.push_back(g);
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

// An upscaled copy holds no detail beyond its source's resolution; an original holds plenty beyond
// a downscaled copy's. Checked on a photo and on a generated scene.
TEST(DedupKeepRule, UpscaledCopiesHoldNoDetailBeyondTheirSource) {
  for (auto [name, im] : {std::pair{std::string("chelsea.jpg"), image::decode_file(std::string(CLIPKIT_TEST_DATA) + "/images/chelsea.jpg")},
                          std::pair{std::string("scene"), apps::synthetic::scene(7, 240, 180)}}) {
    const int w = im.width / 2, h = im.height / 2;
    const auto half = apps::synthetic::resized(im, w, h);
    const auto up = apps::synthetic::resized(half, im.width, im.height);
    const auto up_jpeg = apps::synthetic::recompressed(up, 80);
    double r_orig = 0, r_up = 0, r_up_jpeg = 0;
    EXPECT_FALSE(apps::holds_no_detail_beyond(im, w, h, &r_orig)) << name;
    EXPECT_TRUE(apps::holds_no_detail_beyond(up, w, h, &r_up)) << name;
    EXPECT_TRUE(apps::holds_no_detail_beyond(up_jpeg, w, h, &r_up_jpeg)) << name;
    std::printf("  %s: detail ratio original %.3f, 2x upscale %.4f, 2x upscale as q80 JPEG %.4f\n", name.c_str(),
                r_orig, r_up, r_up_jpeg);
    // 1.5x upscales are caught too, and a q70 JPEG of a 2x upscale
    const auto up15 = apps::synthetic::resized(apps::synthetic::resized(im, im.width * 2 / 3, im.height * 2 / 3),
                                               im.width, im.height);
    double r_up15 = 0, r_q70 = 0;
    EXPECT_TRUE(apps::holds_no_detail_beyond(up15, im.width * 2 / 3, im.height * 2 / 3, &r_up15)) << name;
    EXPECT_TRUE(apps::holds_no_detail_beyond(apps::synthetic::recompressed(up, 70), w, h, &r_q70)) << name;
    std::printf("  %s: 1.5x upscale %.4f, 2x upscale as q70 JPEG %.4f\n", name.c_str(), r_up15, r_q70);
    EXPECT_FALSE(apps::holds_no_detail_beyond(im, im.width, im.height)) << name;  // not smaller: cannot tell
  }
}

// The keep rule on generated files (embeddings made equal within each group, so grouping is given):
// lossless over lossy, the source over its upscale, the larger real resolution, then the older file,
// then the shorter path; byte-identical members marked inside near groups; the reason reported.
TEST(DedupKeepRule, OnGeneratedFiles) {
  namespace fs = std::filesystem;
  const auto dir = test::apps_temp_dir("dedup_keep");
  const auto a = apps::synthetic::scene(11, 160, 120), b = apps::synthetic::scene(12, 160, 120),
             c = apps::synthetic::scene(13, 320, 240), d = apps::synthetic::scene(14, 160, 120);
  struct File {
    std::string name;
    int group;
  };
  std::vector<File> files;
  auto png = [&](const std::string& n, const image::Image& im, int g) { image::write_png(dir + "/" + n, im), files.push_back({n, g}); };
  auto jpg = [&](const std::string& n, const image::Image& im, int q, int g) {
    apps::synthetic::write_jpeg(dir + "/" + n, im, q), files.push_back({n, g});
  };
  jpg("a_q70.jpg", a, 70, 0);  // a: the original PNG against a q70 JPEG of it
  png("a.png", a, 0);
  png("b.png", b, 1);          // b: the source against a 2x upscale of it (more pixels, no more detail)
  png("b_up.png", apps::synthetic::resized(b, 320, 240), 1);
  png("c.png", c, 2);          // c: a real 320x240 image against its 160x120 downscale
  png("c_half.png", apps::synthetic::resized(c, 160, 120), 2);
  png("d.png", d, 3);          // d: a byte copy made later, and a JPEG
  fs::copy_file(dir + "/d.png", dir + "/d_copy.png");
  files.push_back({"d_copy.png", 3});
  jpg("d.jpg", d, 95, 3);
  png("e_long_name.png", apps::synthetic::scene(15, 160, 120), 4);  // e: byte-identical, same age: the shorter path
  fs::copy_file(dir + "/e_long_name.png", dir + "/e.png");
  files.push_back({"e.png", 4});
  const auto now = fs::file_time_type::clock::now();
  for (auto& f : files) fs::last_write_time(dir + "/" + f.name, now - std::chrono::hours(1));
  fs::last_write_time(dir + "/d_copy.png", now);  // made later

  std::vector<apps::DedupItem> items;
  std::vector<float> emb;
  const int64_t D = 8;
  for (auto& f : files) {
    apps::DedupItem it;
    it.path = dir + "/" + f.name;
    apps::describe_file_bytes(read_file(it.path), &it);
    auto im = image::decode_file(it.path);
    it.width = im.width, it.height = im.height;
    items.push_back(it);
    std::vector<float> row(D, 0.f);
    row[static_cast<size_t>(f.group)] = 1;
    emb.insert(emb.end(), row.begin(), row.end());
  }
  EXPECT_TRUE(items[1].lossless);
  EXPECT_FALSE(items[0].lossless);
  EXPECT_EQ(items[0].format, "JPEG");
  apps::DedupOptions o;
  auto r = apps::find_duplicates(
      items, emb.data(), D, o, [&](int64_t x, int64_t y) { return apps::files_equal(items[x].path, items[y].path); },
      apps::files_upscale_probe(items));
  ASSERT_EQ(r.groups.size(), 5u);
  auto name = [&](int64_t i) { return fs::path(items[static_cast<size_t>(i)].path).filename().string(); };
  auto expect_keep = [&](int g, const std::string& keep, const std::string& reason) {
    EXPECT_EQ(name(r.groups[g].keep), keep) << "group " << g << ": " << r.groups[g].keep_reason;
    EXPECT_NE(r.groups[g].keep_reason.find(reason), std::string::npos) << r.groups[g].keep_reason;
  };
  expect_keep(0, "a.png", "lossless PNG over lossy JPEG");
  expect_keep(1, "b.png", "upscaled");
  ASSERT_EQ(r.groups[1].upscaled.size(), 1u);
  EXPECT_EQ(name(r.groups[1].upscaled[0]), "b_up.png");
  expect_keep(2, "c.png", "larger resolution: 320x240 over 160x120");
  EXPECT_TRUE(r.groups[2].upscaled.empty());
  expect_keep(3, "d.png", "the oldest file");
  ASSERT_EQ(r.groups[3].identical.size(), 1u);  // d.png and d_copy.png inside the near group
  EXPECT_EQ(r.groups[3].kind, "near");
  EXPECT_EQ(r.groups[3].identical[0].size(), 2u);
  EXPECT_EQ(r.groups[4].kind, "exact");
  expect_keep(4, "e.png", "byte-identical copies; keeping the shortest path");

  auto j = apps::dedup_report_json(r, items, o.threshold);
  EXPECT_EQ(j["groups"][1]["keep_reason"], r.groups[1].keep_reason);
  EXPECT_EQ(j["groups"][3]["identical"][0].size(), 2u);
  bool marked = false;
  for (auto& dt : j["groups"][1]["details"]) marked |= dt["upscaled"].get<bool>() && dt["path"] == dir + "/b_up.png";
  EXPECT_TRUE(marked);
  // The gallery lets a user flip keep/remove and export the list.
  const auto h = apps::dedup_report_html(r, items, o.threshold);
  EXPECT_NE(h.find("id=export"), std::string::npos);
  EXPECT_NE(h.find("data-path=\"" + dir + "/b_up.png\""), std::string::npos);
  EXPECT_NE(h.find("upscaled copy"), std::string::npos);
  EXPECT_NE(h.find("byte-identical set 1"), std::string::npos);
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
