// COCO loader: exact row parity with the reference rows (HF ydshieh/coco_dataset_script view of
// coco-tiny) and the behaviour on every malformed file in coco-tiny/bad/.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "core/error.h"
#include "dataset/caption_dataset.h"

using namespace clipkit::dataset;
using nlohmann::json;

namespace {

const std::string kRoot = std::string(CLIPKIT_TEST_DATA) + "/datasets/coco-tiny";
const std::string kBad = kRoot + "/bad";
const std::string kRefDir = std::string(CLIPKIT_TEST_DATA) + "/reference/datasets/coco-tiny";

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  std::vector<json> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// Expects ds.rows == reference rows field by field; image_path = prefix + "/" + ref image_path.
void expect_rows_match(const CaptionDataset& ds, const std::vector<json>& ref, const std::string& prefix) {
  ASSERT_EQ(ds.rows.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const CaptionRow& r = ds.rows[i];
    const json& e = ref[i];
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(r.image_id, e.at("image_id").get<int64_t>());
    EXPECT_EQ(r.caption_id, e.at("caption_id").get<int64_t>());
    EXPECT_EQ(r.caption, e.at("caption").get<std::string>());
    EXPECT_EQ(r.height, e.at("height").get<int>());
    EXPECT_EQ(r.width, e.at("width").get<int>());
    EXPECT_EQ(r.file_name, e.at("file_name").get<std::string>());
    EXPECT_EQ(r.coco_url, e.at("coco_url").get<std::string>());
    EXPECT_EQ(r.image_path, prefix + "/" + e.at("image_path").get<std::string>());
  }
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const clipkit::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(CocoLoader, ValRowsMatchReference) {
  CaptionDataset ds = load_coco(kRoot, "val");
  expect_rows_match(ds, read_jsonl(kRefDir + "/val2017.rows.jsonl"), kRoot);
  EXPECT_EQ(ds.split, "val");
  EXPECT_EQ(ds.root, kRoot);
  EXPECT_EQ(ds.source, kRoot + "/annotations/captions_val2017.json");
  EXPECT_EQ(ds.report.rows, 200);
  EXPECT_EQ(ds.report.skipped, 0);
  EXPECT_TRUE(ds.report.problems.empty());
  EXPECT_EQ(ds.report.summary(), "200 rows, 0 skipped");
}

TEST(CocoLoader, TrainRowsMatchReference) {
  CaptionDataset ds = load_coco(kRoot, "train");
  expect_rows_match(ds, read_jsonl(kRefDir + "/train2017.rows.jsonl"), kRoot);
  EXPECT_EQ(ds.report.rows, 750);
  EXPECT_EQ(ds.report.skipped, 0);
}

TEST(CocoLoader, CaptionsKeptVerbatim) {
  // The fixture has captions with stray leading/trailing spaces and trailing newlines: none stripped.
  CaptionDataset ds = load_coco(kRoot, "train");
  int odd = 0;
  for (const auto& r : ds.rows)
    odd += !r.caption.empty() && (r.caption.front() == ' ' || r.caption.back() == ' ' || r.caption.back() == '\n');
  EXPECT_GT(odd, 10);
}

TEST(CocoLoader, SplitSpellings) {
  auto a = load_coco(kRoot, "val2017");
  auto b = load_coco(kRoot, "validation");
  auto c = load_coco(kRoot + "/", "val");  // trailing slash: no doubled '/' (os.path.join)
  ASSERT_EQ(a.rows.size(), 200u);
  ASSERT_EQ(b.rows.size(), 200u);
  ASSERT_EQ(c.rows.size(), 200u);
  EXPECT_EQ(a.rows[0].image_path, kRoot + "/val2017/000000297578.jpg");
  EXPECT_EQ(c.rows[0].image_path, kRoot + "/val2017/000000297578.jpg");
  EXPECT_EQ(normalize_split("train2017"), "train");
  EXPECT_EQ(normalize_split("val"), "val");
}

TEST(CocoLoader, UniqueImagesInRowOrder) {
  CaptionDataset ds = load_coco(kRoot, "val");
  std::vector<int64_t> u = ds.unique_images();
  ASSERT_EQ(u.size(), 40u);  // 40 images x 5 captions
  std::set<std::string> seen;
  size_t next = 0;
  for (size_t i = 0; i < ds.rows.size(); ++i) {
    if (seen.insert(ds.rows[i].image_path).second) {
      ASSERT_LT(next, u.size());
      EXPECT_EQ(u[next++], static_cast<int64_t>(i));
    }
  }
  EXPECT_EQ(next, u.size());
  EXPECT_EQ(load_coco(kRoot, "train").unique_images().size(), 150u);
}

TEST(CocoLoader, MissingSplitOrFolderIsAnError) {
  EXPECT_NE(error_of([] { load_coco(kRoot, "test"); }).find("captions_test2017.json"), std::string::npos);
  EXPECT_NE(error_of([] { load_coco(kRoot + "/nope", "val"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([] { load_coco_annotations(kBad + "/nope.json", kRoot + "/val2017"); }).find("nope.json"),
            std::string::npos);
  EXPECT_NE(error_of([] { load_coco_annotations(kRoot + "/annotations/captions_val2017.json", kRoot + "/nodir"); })
                .find("image folder does not exist"),
            std::string::npos);
}

TEST(CocoLoader, NoImageCheckKeepsRowsWithoutStat) {
  // Without the existence check an absent image folder is fine: rows only carry paths.
  CaptionDataset ds = load_coco_annotations(kRoot + "/annotations/captions_val2017.json", "/nonexistent/dir", false);
  ASSERT_EQ(ds.rows.size(), 200u);
  EXPECT_EQ(ds.rows[0].image_path, "/nonexistent/dir/000000297578.jpg");
}

// ---- bad/ ---------------------------------------------------------------------------------------

class CocoBad : public ::testing::Test {
 protected:
  CaptionDataset load(const std::string& name) { return load_coco_annotations(kBad + "/" + name, kRoot + "/val2017"); }
  // Rows of the 15-caption subset as the good val file gives them, by caption id.
  std::map<int64_t, CaptionRow> good_by_caption_id() {
    std::map<int64_t, CaptionRow> m;
    for (auto& r : load_coco(kRoot, "val").rows) m[r.caption_id] = r;
    return m;
  }
  void expect_rows_are_good(const CaptionDataset& ds) {
    auto good = good_by_caption_id();
    for (const auto& r : ds.rows) {
      auto it = good.find(r.caption_id);
      ASSERT_NE(it, good.end()) << r.caption_id;
      EXPECT_EQ(r.caption, it->second.caption);
      EXPECT_EQ(r.image_id, it->second.image_id);
      EXPECT_EQ(r.image_path, it->second.image_path);
    }
  }
};

TEST_F(CocoBad, InvalidJsonNamesFileAndPosition) {
  std::string e = error_of([&] { load("invalid_json.json"); });
  EXPECT_NE(e.find(kBad + "/invalid_json.json: not valid JSON"), std::string::npos) << e;
  // nlohmann counts the unescaped newline ending line 83 as the start of line 84 (Python: 83:85).
  EXPECT_NE(e.find("parse error at line 84"), std::string::npos) << e;
  EXPECT_NE(e.find("control character U+000A"), std::string::npos) << e;
}

TEST_F(CocoBad, NoAnnotationsKey) {
  std::string e = error_of([&] { load("no_annotations_key.json"); });
  EXPECT_NE(e.find("no_annotations_key.json: no \"annotations\" key"), std::string::npos) << e;
}

TEST_F(CocoBad, EmptyAnnotationsGivesZeroRowsAndTrainingRefuses) {
  CaptionDataset ds = load("empty_annotations.json");
  EXPECT_TRUE(ds.rows.empty());
  EXPECT_EQ(ds.report.skipped, 0);
  std::string e = error_of([&] { require_rows(ds); });
  EXPECT_NE(e.find("empty_annotations.json: no caption rows"), std::string::npos) << e;
  EXPECT_NE(e.find("nothing to train on"), std::string::npos) << e;
}

TEST_F(CocoBad, AnnotationMissingImageIsSkipped) {
  CaptionDataset ds = load("annotation_missing_image.json");
  EXPECT_EQ(ds.rows.size(), 14u);
  EXPECT_EQ(ds.report.rows, 14);
  EXPECT_EQ(ds.report.skipped, 1);
  const ProblemKind* k = ds.report.find("unknown_image_id");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->count, 1);
  ASSERT_EQ(k->examples.size(), 1u);
  EXPECT_EQ(k->examples[0], "annotation #4 (id 731044): image_id 577790 not in images");
  ASSERT_EQ(ds.report.problems.size(), 1u);
  EXPECT_EQ(ds.report.problems[0],
            "1 row skipped: annotation refers to an image_id not in \"images\" "
            "(e.g. annotation #4 (id 731044): image_id 577790 not in images)");
  for (const auto& r : ds.rows) EXPECT_NE(r.caption_id, 731044);
  expect_rows_are_good(ds);
}

TEST_F(CocoBad, CaptionNotStringIsSkipped) {
  CaptionDataset ds = load("caption_not_string.json");
  EXPECT_EQ(ds.rows.size(), 14u);
  EXPECT_EQ(ds.report.skipped, 1);
  const ProblemKind* k = ds.report.find("caption_not_string");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->count, 1);
  EXPECT_EQ(k->examples.at(0), "annotation #2 (id 457943): caption is an integer 12345");
  EXPECT_EQ(ds.report.summary(), "14 rows, 1 skipped: 1 x caption is not a string");
  expect_rows_are_good(ds);
}

TEST_F(CocoBad, CaptionNullIsSkipped) {
  CaptionDataset ds = load("caption_null.json");
  EXPECT_EQ(ds.rows.size(), 14u);
  const ProblemKind* k = ds.report.find("caption_not_string");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->examples.at(0), "annotation #7 (id 43121): caption is null");
  for (const auto& r : ds.rows) EXPECT_NE(r.caption_id, 43121);
  expect_rows_are_good(ds);
}

TEST_F(CocoBad, ImageFileMissingSkipsItsCaptions) {
  CaptionDataset ds = load("image_file_missing.json");
  // Image 15466 names 000000999999.jpg; its captions go, the other two images' stay.
  EXPECT_EQ(ds.report.skipped, 5);
  EXPECT_EQ(ds.rows.size(), 10u);
  for (const auto& r : ds.rows) EXPECT_NE(r.image_id, 15466);
  const ProblemKind* k = ds.report.find("image_file_missing");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->count, 5);
  ASSERT_EQ(k->examples.size(), 1u);  // one example per missing file, not per caption
  EXPECT_EQ(k->examples[0], kRoot + "/val2017/000000999999.jpg does not exist");
  expect_rows_are_good(ds);
  // Without the check the rows are kept (the decoder reports the file when it is opened).
  CaptionDataset all = load_coco_annotations(kBad + "/image_file_missing.json", kRoot + "/val2017", false);
  EXPECT_EQ(all.rows.size(), 15u);
  EXPECT_EQ(all.report.skipped, 0);
}

TEST_F(CocoBad, LoadCaptionsDispatch) {
  // A folder -> COCO; a COCO .json under annotations/ -> images from the sibling split folder.
  CaptionDataset a = load_captions(kRoot, "val");
  CaptionDataset b = load_captions(kRoot + "/annotations/captions_val2017.json", "");
  ASSERT_EQ(a.rows.size(), 200u);
  ASSERT_EQ(b.rows.size(), 200u);
  EXPECT_EQ(a.rows[17].image_path, b.rows[17].image_path);
  EXPECT_EQ(a.rows[17].caption, b.rows[17].caption);
  // A bad/ file given directly resolves images in its own folder, where there are none.
  CaptionDataset c = load_captions(kBad + "/caption_null.json", "");
  EXPECT_EQ(c.rows.size(), 0u);
  EXPECT_EQ(c.report.skipped, 15);
  std::string e = error_of([&] { require_rows(c); });
  EXPECT_NE(e.find("every row was skipped"), std::string::npos) << e;
  EXPECT_EQ(b.split, "val");  // from the file name
  EXPECT_EQ(c.split, "");
  // A broken .json is reported as broken JSON, not mistaken for JSON Lines.
  EXPECT_NE(error_of([&] { load_captions(kBad + "/invalid_json.json", ""); })
                .find("invalid_json.json: not valid JSON (parse error at line 84"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_caption_table(kBad + "/invalid_json.json"); })
                .find("invalid_json.json: not valid JSON (parse error at line 84"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_caption_table(kBad + "/caption_null.json"); }).find("this is a COCO captions file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_captions(kRoot + "/train2017", "train"); }).find("not a COCO 2017 folder"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_captions(kRoot + "/README.md", "train"); }).find("unknown dataset format"),
            std::string::npos);
}
