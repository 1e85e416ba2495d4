// clipkit data check: output and exit codes (0 clean, 3 rows skipped, 1 unusable / empty).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

const std::string kRoot = std::string(CLIPKIT_TEST_DATA) + "/datasets/coco-tiny";

struct Result {
  int rc = -1;
  std::string out;  // stdout, or stdout+stderr when merged
};

Result run(const std::string& args, bool merge_stderr = false) {
  std::string cmd = std::string("'") + CLIPKIT_BINARY + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

TEST(DataCli, CheckCleanCocoSplit) {
  Result r = run("data check --data '" + kRoot + "' --split val");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "source: " + kRoot + "/annotations/captions_val2017.json\nsplit: val\nrows: 200\n"
                   "unique images: 40\nskipped: 0\n");
}

TEST(DataCli, CheckJsonWithSkippedRowsExits3) {
  Result r = run("data check --data '" + kRoot + "/bad/image_file_missing.json' --images '" + kRoot +
                 "/val2017' --json --show 1");
  EXPECT_EQ(r.rc, 3) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["rows"], 10);
  EXPECT_EQ(j["skipped"], 5);
  EXPECT_EQ(j["unique_images"], 2);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_EQ(j["problems"][0]["kind"], "image_file_missing");
  EXPECT_EQ(j["problems"][0]["count"], 5);
  EXPECT_EQ(j["head"][0]["caption_id"], 536679);
  EXPECT_EQ(j["head"][0]["caption"], "A red diamond to the right of a red star.");
  Result merged = run("data check --data '" + kRoot + "/bad/image_file_missing.json' --images '" + kRoot +
                      "/val2017'", true);
  EXPECT_NE(merged.out.find("clipkit: 5 rows skipped: image file missing (e.g. " + kRoot +
                            "/val2017/000000999999.jpg does not exist)"),
            std::string::npos)
      << merged.out;
}

TEST(DataCli, UnusableOrEmptyExits1) {
  Result bad = run("data check --data '" + kRoot + "/bad/invalid_json.json'", true);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("clipkit: error: " + kRoot + "/bad/invalid_json.json: not valid JSON"), std::string::npos)
      << bad.out;
  Result empty = run("data check --data '" + kRoot + "/bad/empty_annotations.json' --images '" + kRoot + "/val2017'",
                     true);
  EXPECT_EQ(empty.rc, 1);
  EXPECT_NE(empty.out.find("nothing to train on"), std::string::npos) << empty.out;
  Result usage = run("data check");
  EXPECT_EQ(usage.rc, 2);
}
