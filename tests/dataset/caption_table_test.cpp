// CSV / TSV / JSONL / JSON caption tables: quoting, relative paths, optional columns, bad rows.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "dataset/caption_dataset.h"
#include "dataset/csv_reader.h"

using namespace clipkit::dataset;
namespace fs = std::filesystem;

namespace {

const std::string kRoot = std::string(CLIPKIT_TEST_DATA) + "/datasets/coco-tiny";
const std::string kRefDir = std::string(CLIPKIT_TEST_DATA) + "/reference/datasets/coco-tiny";

// A scratch folder with two (empty) image files: img/a.jpg, img/b.jpg.
class TableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("clipkit_table_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "img");
    std::ofstream(dir_ / "img/a.jpg") << "x";
    std::ofstream(dir_ / "img/b.jpg") << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string d() const { return dir_.string(); }
  fs::path dir_;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const clipkit::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::vector<std::vector<std::string>> read_all(const std::string& text, std::vector<std::string>* errors = nullptr,
                                               std::vector<int64_t>* lines = nullptr) {
  CsvReader r(text);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> f;
  std::string err;
  while (r.next(f, err)) {
    out.push_back(f);
    if (errors) errors->push_back(err);
    if (lines) lines->push_back(r.line());
  }
  return out;
}

}  // namespace

TEST(CsvReader, Rfc4180Quoting) {
  using V = std::vector<std::vector<std::string>>;
  EXPECT_EQ(read_all("a,b\n1,2\n"), (V{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(read_all("a,b\r\n1,2\r\n"), (V{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(read_all("a,b\n1,2"), (V{{"a", "b"}, {"1", "2"}}));  // no final newline
  EXPECT_EQ(read_all("\"x,y\",\"say \"\"hi\"\"\"\n"), (V{{"x,y", "say \"hi\""}}));
  EXPECT_EQ(read_all("\"line1\nline2\r\nline3\",z\n"), (V{{"line1\nline2\r\nline3", "z"}}));
  EXPECT_EQ(read_all(",\n"), (V{{"", ""}}));
  EXPECT_EQ(read_all("\"\",x\n"), (V{{"", "x"}}));
  EXPECT_EQ(read_all("a\n\n\nb\n"), (V{{"a"}, {"b"}}));              // blank lines skipped
  EXPECT_EQ(read_all("\xEF\xBB\xBFh1,h2\n"), (V{{"h1", "h2"}}));      // BOM dropped
  EXPECT_EQ(read_all("ab\"c,d\n"), (V{{"ab\"c", "d"}}));              // literal quote mid-field
  EXPECT_EQ(read_all(" \"a\" ,b\n"), (V{{" \"a\" ", "b"}}));          // not at field start: literal
  EXPECT_EQ(read_all("\"a\"x,b\n"), (V{{"ax", "b"}}));                // text after closing quote kept
}

TEST(CsvReader, LineNumbersAndUnterminatedQuote) {
  std::vector<std::string> errors;
  std::vector<int64_t> lines;
  auto recs = read_all("h\n\"multi\nline\"\nnext\n\"open\nrest,of\nfile\n", &errors, &lines);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 4, 5}));
  EXPECT_EQ(errors[3], "unterminated quoted field");
  EXPECT_EQ(recs[3][0], "open\nrest,of\nfile\n");
}

TEST_F(TableTest, CsvWithQuotedCaptionsAndRelativePaths) {
  std::string p = write("train.csv",
                        "image_path,caption\n"
                        "img/a.jpg,\"A cat, a dog, and \"\"quotes\"\"\"\n"
                        "img/b.jpg,\"two\nlines \"\n"
                        + d() + "/img/a.jpg,absolute path\n");
  CaptionDataset ds = load_caption_table(p);
  ASSERT_EQ(ds.rows.size(), 3u) << ds.report.summary();
  EXPECT_EQ(ds.rows[0].image_path, d() + "/img/a.jpg");
  EXPECT_EQ(ds.rows[0].caption, "A cat, a dog, and \"quotes\"");
  EXPECT_EQ(ds.rows[1].caption, "two\nlines ");
  EXPECT_EQ(ds.rows[1].image_path, d() + "/img/b.jpg");
  EXPECT_EQ(ds.rows[2].image_path, d() + "/img/a.jpg");
  EXPECT_EQ(ds.rows[2].caption, "absolute path");
  // Derived ids: image_id = distinct-path index, caption_id = record index, file_name = basename.
  EXPECT_EQ(ds.rows[0].image_id, 0);
  EXPECT_EQ(ds.rows[1].image_id, 1);
  EXPECT_EQ(ds.rows[2].image_id, 0);
  EXPECT_EQ(ds.rows[2].caption_id, 2);
  EXPECT_EQ(ds.rows[1].file_name, "b.jpg");
  EXPECT_EQ(ds.unique_images(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ds.report.skipped, 0);
}

TEST_F(TableTest, CsvCustomColumnsAndTsv) {
  std::string p = write("t.csv", "caption_text,extra,path\nhello,1,img/a.jpg\n");
  EXPECT_NE(error_of([&] { load_caption_table(p); }).find("no column \"image_path\" in the header (columns: "
                                                          "\"caption_text\", \"extra\", \"path\")"),
            std::string::npos);
  CaptionDataset ds = load_caption_table(p, "path", "caption_text");
  ASSERT_EQ(ds.rows.size(), 1u);
  EXPECT_EQ(ds.rows[0].caption, "hello");
  std::string t = write("t.tsv", "image_path\tcaption\nimg/b.jpg\ta, b\tc\n");
  EXPECT_EQ(load_caption_table(t).rows.size(), 0u);  // 3 fields: malformed
  std::string t2 = write("t2.tsv", "image_path\tcaption\nimg/b.jpg\t\"a\tb\"\n");
  ASSERT_EQ(load_caption_table(t2).rows.size(), 1u);
  EXPECT_EQ(load_caption_table(t2).rows[0].caption, "a\tb");
}

TEST_F(TableTest, CsvBadRowsAreSkippedAndCounted) {
  std::string p = write("bad.csv",
                        "image_path,caption\n"
                        "img/a.jpg,good one\n"
                        "img/a.jpg,too,many\n"      // line 3: 3 fields
                        ",no image\n"               // line 4
                        "img/missing.jpg,gone\n"    // line 5
                        "img/missing.jpg,gone again\n"
                        "img/b.jpg,\"unterminated\n");
  CaptionDataset ds = load_caption_table(p);
  ASSERT_EQ(ds.rows.size(), 1u);
  EXPECT_EQ(ds.rows[0].caption, "good one");
  EXPECT_EQ(ds.report.skipped, 5);
  const ProblemKind* bad = ds.report.find("invalid_record");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->count, 2);
  EXPECT_EQ(bad->examples.at(0), "line 3: 3 fields, the header has 2");
  EXPECT_EQ(bad->examples.at(1), "line 7: unterminated quoted field");
  ASSERT_NE(ds.report.find("image_path_missing"), nullptr);
  EXPECT_EQ(ds.report.find("image_path_missing")->examples.at(0), "line 4");
  const ProblemKind* miss = ds.report.find("image_file_missing");
  ASSERT_NE(miss, nullptr);
  EXPECT_EQ(miss->count, 2);
  EXPECT_EQ(miss->examples, (std::vector<std::string>{d() + "/img/missing.jpg does not exist"}));
  EXPECT_EQ(ds.report.problems.size(), 3u);
}

TEST_F(TableTest, CsvUnusableFiles) {
  EXPECT_NE(error_of([&] { load_caption_table(write("e.csv", "")); }).find("e.csv: empty file"), std::string::npos);
  EXPECT_NE(error_of([&] { load_caption_table(d() + "/none.csv"); }).find("none.csv: caption table does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_caption_table(write("x.txt", "a")); }).find("unknown table format"), std::string::npos);
}

TEST_F(TableTest, Jsonl) {
  std::string p = write("train.jsonl",
                        "{\"image_path\": \"img/a.jpg\", \"caption\": \"A, \\\"quoted\\\"\\nnewline \"}\r\n"
                        "\n"
                        "{\"image_path\": \"img/b.jpg\", \"caption\": 7}\n"
                        "{\"image_path\": \"img/b.jpg\", \"caption\": null}\n"
                        "not json\n"
                        "[1, 2]\n"
                        "{\"caption\": \"no path\"}\n"
                        "{\"image_path\": \"img/b.jpg\", \"caption\": \"ok\", \"image_id\": 42, \"caption_id\": 9,"
                        " \"height\": 480, \"width\": 640, \"coco_url\": \"u\"}");
  CaptionDataset ds = load_caption_table(p);
  ASSERT_EQ(ds.rows.size(), 2u) << ds.report.summary();
  EXPECT_EQ(ds.rows[0].caption, "A, \"quoted\"\nnewline ");
  EXPECT_EQ(ds.rows[0].image_path, d() + "/img/a.jpg");
  EXPECT_EQ(ds.rows[0].caption_id, 0);
  const CaptionRow& r = ds.rows[1];
  EXPECT_EQ(r.image_id, 42);
  EXPECT_EQ(r.caption_id, 9);
  EXPECT_EQ(r.height, 480);
  EXPECT_EQ(r.width, 640);
  EXPECT_EQ(r.coco_url, "u");
  EXPECT_EQ(r.file_name, "b.jpg");
  EXPECT_EQ(ds.report.skipped, 5);
  const ProblemKind* cap = ds.report.find("caption_not_string");
  ASSERT_NE(cap, nullptr);
  EXPECT_EQ(cap->count, 2);
  EXPECT_EQ(cap->examples.at(0), "line 3: caption is an integer 7");
  EXPECT_EQ(cap->examples.at(1), "line 4: caption is null");
  const ProblemKind* bad = ds.report.find("invalid_record");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->count, 2);
  EXPECT_EQ(bad->examples.at(0), "line 5: \"not json\"");
  EXPECT_EQ(ds.report.find("image_path_missing")->examples.at(0), "line 7: missing");
}

TEST_F(TableTest, JsonlWithoutImageColumnIsAnError) {
  std::string p = write("x.jsonl", "{\"path\": \"img/a.jpg\", \"caption\": \"c\"}\n");
  EXPECT_NE(error_of([&] { load_caption_table(p); }).find("no record has the image column \"image_path\""),
            std::string::npos);
  EXPECT_EQ(load_caption_table(p, "path").rows.size(), 1u);
}

TEST_F(TableTest, JsonArrayAndDispatch) {
  std::string p = write("a.json", "[{\"image_path\": \"img/a.jpg\", \"caption\": \"x\"},"
                                  " {\"image_path\": \"img/b.jpg\", \"caption\": \"y\"}]");
  CaptionDataset ds = load_captions(p, "train");
  ASSERT_EQ(ds.rows.size(), 2u);
  EXPECT_EQ(ds.rows[1].caption, "y");
  std::string l = write("l.json", "{\"image_path\": \"img/a.jpg\", \"caption\": \"x\"}\n"
                                  "{\"image_path\": \"img/b.jpg\", \"caption\": \"y\"}\n");
  EXPECT_EQ(load_captions(l, "train").rows.size(), 2u);  // JSON Lines in a .json file
  std::string c = write("c.csv", "image_path,caption\nimg/a.jpg,x\n");
  EXPECT_EQ(load_captions(c, "train").rows.size(), 1u);
}

TEST(CaptionTable, ReferenceRowsRoundTrip) {
  // The reference rows file is itself a JSONL table; with its explicit ids it must give the COCO rows
  // (image paths aside: the reference's are relative to the dataset folder, not to the file).
  CaptionDataset coco = load_coco(kRoot, "val");
  CaptionDataset table = load_caption_table(kRefDir + "/val2017.rows.jsonl", "image_path", "caption", false);
  ASSERT_EQ(table.rows.size(), coco.rows.size());
  for (size_t i = 0; i < coco.rows.size(); ++i) {
    const CaptionRow &a = coco.rows[i], &b = table.rows[i];
    EXPECT_EQ(a.image_id, b.image_id);
    EXPECT_EQ(a.caption_id, b.caption_id);
    EXPECT_EQ(a.caption, b.caption);
    EXPECT_EQ(a.height, b.height);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.file_name, b.file_name);
    EXPECT_EQ(a.coco_url, b.coco_url);
    EXPECT_EQ(b.image_path, kRefDir + "/val2017/" + a.file_name);
  }
}
