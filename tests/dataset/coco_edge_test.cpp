// COCO loader on hand-made malformed documents: odd element types, nested values in fields,
// duplicate image ids, invalid image entries, and top-level shapes that are not COCO at all.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "dataset/caption_dataset.h"

using namespace clipkit::dataset;
namespace fs = std::filesystem;

namespace {

class CocoEdge : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clipkit_coco_edge_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "img");
    for (const char* f : {"1.jpg", "2.jpg", "3.jpg"}) std::ofstream(dir_ / "img" / f) << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }
  CaptionDataset load(const std::string& json, bool check = true) {
    std::string p = (dir_ / "c.json").string();
    std::ofstream(p, std::ios::binary) << json;
    return load_coco_annotations(p, (dir_ / "img").string(), check);
  }
  std::string error_of(const std::string& json) {
    try {
      load(json);
    } catch (const clipkit::Error& e) {
      return e.what();
    }
    return "<no error>";
  }
  fs::path dir_;
};

const char* kImages = R"("images": [
  {"id": 1, "file_name": "1.jpg", "height": 10, "width": 20, "coco_url": "u1", "extra": {"nested": [1, {"id": 9}]}},
  {"id": 2, "file_name": "2.jpg"},
  {"id": 3, "file_name": 3},
  {"file_name": "x.jpg"},
  7
])";

}  // namespace

TEST_F(CocoEdge, OddRecordsAreSkippedWithReasons) {
  CaptionDataset ds = load(std::string("{") + kImages + R"(, "annotations": [
    {"image_id": 1, "id": 10, "caption": "ok one", "meta": {"caption": 5, "id": "x"}},
    {"image_id": 2, "id": 11, "caption": ["a", "list"]},
    {"image_id": 2, "id": 12, "caption": 1.5},
    {"image_id": "2", "id": 13, "caption": "string image id"},
    {"image_id": 2, "caption": "no id"},
    [1, 2],
    "text",
    {"image_id": 3, "id": 14, "caption": "image entry invalid"},
    {"image_id": 2, "id": 15, "caption": "ok two", "caption_extra": null},
    {"image_id": 2, "id": 16, "caption": "dup key wins", "caption": "last"}
  ]})");
  ASSERT_EQ(ds.rows.size(), 3u) << ds.report.summary();
  EXPECT_EQ(ds.rows[0].caption, "ok one");
  EXPECT_EQ(ds.rows[0].caption_id, 10);  // the nested "id" inside "meta" is ignored
  EXPECT_EQ(ds.rows[0].height, 10);
  EXPECT_EQ(ds.rows[0].width, 20);
  EXPECT_EQ(ds.rows[0].coco_url, "u1");
  EXPECT_EQ(ds.rows[1].caption, "ok two");
  EXPECT_EQ(ds.rows[1].height, 0);  // absent in the image entry
  EXPECT_EQ(ds.rows[2].caption, "last");  // duplicate key: the last value, as Python's json
  EXPECT_EQ(ds.report.skipped, 7);

  const ProblemKind* cap = ds.report.find("caption_not_string");
  ASSERT_NE(cap, nullptr);
  EXPECT_EQ(cap->count, 2);
  EXPECT_EQ(cap->examples, (std::vector<std::string>{"annotation #1 (id 11): caption is an array",
                                                     "annotation #2 (id 12): caption is a float 1.5"}));
  const ProblemKind* inv = ds.report.find("invalid_record");
  ASSERT_NE(inv, nullptr);
  EXPECT_EQ(inv->count, 4);
  EXPECT_EQ(inv->examples, (std::vector<std::string>{"annotation #3 (id 13): image_id is a string \"2\"",
                                                     "annotation #4: id is missing",
                                                     "annotation #5: not an object (an array)"}));
  const ProblemKind* unk = ds.report.find("unknown_image_id");
  ASSERT_NE(unk, nullptr);
  EXPECT_EQ(unk->examples.at(0), "annotation #7 (id 14): image_id 3 has an invalid images entry");
  const ProblemKind* img = ds.report.find("invalid_image_entry");
  ASSERT_NE(img, nullptr);
  EXPECT_FALSE(img->skips_rows);
  EXPECT_EQ(img->count, 3);
  EXPECT_EQ(img->examples, (std::vector<std::string>{"images[2]: file_name is an integer 3",
                                                     "images[3]: id is missing",
                                                     "images[4]: not an object (an integer 7)"}));
  // Kinds in first-seen order; notes (invalid_image_entry) are not skipped rows.
  EXPECT_EQ(ds.report.summary(),
            "3 rows, 7 skipped: 2 x caption is not a string, 4 x annotation without integer image_id and id, "
            "1 x annotation refers to an image_id not in \"images\"");
}

TEST_F(CocoEdge, DuplicateImageIdLastWins) {
  CaptionDataset ds = load(R"({"images": [{"id": 1, "file_name": "1.jpg"}, {"id": 1, "file_name": "2.jpg"}],
                              "annotations": [{"image_id": 1, "id": 5, "caption": "c"}]})");
  ASSERT_EQ(ds.rows.size(), 1u);
  EXPECT_EQ(ds.rows[0].file_name, "2.jpg");
  const ProblemKind* d = ds.report.find("duplicate_image_id");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->examples.at(0), "id 1: 2.jpg replaces 1.jpg");
  EXPECT_EQ(ds.report.skipped, 0);
}

TEST_F(CocoEdge, AnnotationsBeforeImagesAndLargeIds) {
  CaptionDataset ds = load(R"({"annotations": [{"image_id": 9007199254740993, "id": -4, "caption": "x"}],
                              "images": [{"id": 9007199254740993, "file_name": "3.jpg"}]})");
  ASSERT_EQ(ds.rows.size(), 1u);
  EXPECT_EQ(ds.rows[0].image_id, 9007199254740993);  // beyond double precision: kept exact
  EXPECT_EQ(ds.rows[0].caption_id, -4);
}

TEST_F(CocoEdge, UnusableDocuments) {
  EXPECT_NE(error_of("[1, 2]").find("not a COCO captions file"), std::string::npos);
  EXPECT_NE(error_of("42").find("not a COCO captions file"), std::string::npos);
  EXPECT_NE(error_of(R"({"images": [], "annotations": {}})").find("\"annotations\" is an object, expected an array"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"images": 5, "annotations": []})").find("\"images\" is an integer 5, expected an array"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"annotations": []})").find("no \"images\" key"), std::string::npos);
  EXPECT_NE(error_of(R"({"images": []})").find("no \"annotations\" key"), std::string::npos);
  EXPECT_NE(error_of("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"images": [], "annotations": []} trailing)").find("not valid JSON"), std::string::npos);
  EXPECT_TRUE(load(R"({"images": [], "annotations": []})").rows.empty());
}
