#include "dataset/webdataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "shard_util.h"

namespace clipkit::dataset {
namespace {

namespace fs = std::filesystem;
using test::ShardSampleSpec;

struct TempDir {
  fs::path p;
  explicit TempDir(const std::string& name)
      : p(fs::temp_directory_path() / ("clipkit_wds_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~TempDir() { fs::remove_all(p); }
  std::string str() const { return p.string(); }
};

int64_t count_of(const LoadReport& r, const std::string& kind) {
  auto* k = r.find(kind);
  return k ? k->count : 0;
}

TEST(ShardSpec, BraceExpansionFollowsBraceexpand) {
  EXPECT_EQ(brace_expand("s/{00000..00003}.tar"),
            (std::vector<std::string>{"s/00000.tar", "s/00001.tar", "s/00002.tar", "s/00003.tar"}));
  EXPECT_EQ(brace_expand("{a,b}-{1..2}"), (std::vector<std::string>{"a-1", "a-2", "b-1", "b-2"}));
  EXPECT_EQ(brace_expand("{0..10..5}"), (std::vector<std::string>{"0", "5", "10"}));
  EXPECT_EQ(brace_expand("{8..11}"), (std::vector<std::string>{"8", "9", "10", "11"}));     // no padding asked
  EXPECT_EQ(brace_expand("{08..11}"), (std::vector<std::string>{"08", "09", "10", "11"}));  // padded
  EXPECT_EQ(brace_expand("{3..1}"), (std::vector<std::string>{"3", "2", "1"}));
  EXPECT_EQ(brace_expand("x{a..c}"), (std::vector<std::string>{"xa", "xb", "xc"}));
  EXPECT_EQ(brace_expand("{a,{b,c}1}"), (std::vector<std::string>{"a", "b1", "c1"}));
  EXPECT_EQ(brace_expand("{x}.tar"), (std::vector<std::string>{"{x}.tar"}));  // not an expansion: literal
  EXPECT_EQ(brace_expand("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_THROW(brace_expand("s/{0..3.tar"), Error);
}

TEST(ShardSpec, ExpandsBracesGlobsAndListsAndNamesWhatIsMissing) {
  TempDir d("spec");
  for (const char* n : {"00000.tar", "00001.tar", "00002.tar", "extra-a.tar"}) test::write_shard(d.str() + "/" + n, {});
  auto v = expand_shard_spec(d.str() + "/{00000..00002}.tar");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[2], d.str() + "/00002.tar");
  EXPECT_EQ(expand_shard_spec(d.str() + "/*.tar").size(), 4u);
  v = expand_shard_spec(d.str() + "/extra-*.tar::" + d.str() + "/0000{1,0}.tar");
  EXPECT_EQ(v, (std::vector<std::string>{d.str() + "/extra-a.tar", d.str() + "/00001.tar", d.str() + "/00000.tar"}));
  try {
    expand_shard_spec(d.str() + "/{00000..00003}.tar");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("00003.tar: shard does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_shard_spec(d.str() + "/nothing-*.tar"), Error);
  EXPECT_TRUE(is_shard_spec(d.str() + "/{00000..00002}.tar"));
  EXPECT_FALSE(is_shard_spec(d.str()));
  EXPECT_FALSE(is_shard_spec("captions.csv"));
}

TEST(ShardStream, GroupsMembersIntoSamplesAndCountsWhatItSkips) {
  TempDir d("stream");
  std::vector<ShardSampleSpec> s = {
      {"000000", {{"jpg", "IMG0"}, {"txt", "a red circle"}, {"json", R"({"caption": "from json 0", "url": "u0"})"}}},
      {"000001", {{"txt", "no image here"}, {"cls", "3"}}},                      // no image
      {"000002", {{"png", "IMG2"}}},                                              // no caption
      {"sub/000003", {{"JPEG", "IMG3"}, {"txt", "upper-case extension"}, {"seg.png", "MASK"}}},
      {"000004", {{"webp", "IMG4"}, {"txt", "first"}, {"json", "{not json"}}},   // invalid json, kept
  };
  test::write_shard(d.str() + "/a.tar", s);
  test::write_shard(d.str() + "/b.tar", {{"000005", {{"jpg", "IMG5"}, {"txt", "cap5"}, {"txt", "dup"}}}});
  ShardStream st(expand_shard_spec(d.str() + "/{a,b}.tar"), {});
  std::vector<ShardSample> got;
  ShardSample x;
  while (st.next(&x)) got.push_back(x);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].key, "000000");
  EXPECT_EQ(got[0].caption, "a red circle");
  EXPECT_EQ(got[0].image, "IMG0");
  EXPECT_EQ(got[0].json.value("url", ""), "u0");
  EXPECT_EQ(got[0].path(), d.str() + "/a.tar/000000.jpg");
  EXPECT_EQ(got[1].key, "sub/000003");
  EXPECT_EQ(got[1].image, "IMG3");
  EXPECT_EQ(got[1].image_member, "sub/000003.JPEG");
  EXPECT_EQ(got[2].caption, "first");
  EXPECT_TRUE(got[2].json.is_null());
  EXPECT_EQ(got[3].caption, "cap5");
  EXPECT_EQ(got[3].shard, d.str() + "/b.tar");
  EXPECT_EQ(got[3].shard_pos, 1);
  EXPECT_EQ(got[3].in_shard, 0);
  EXPECT_EQ(got[2].in_shard, 2);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].index, static_cast<int64_t>(i));
  auto r = st.report();
  EXPECT_EQ(r.rows, 4);
  EXPECT_EQ(count_of(r, "no_image"), 1);
  EXPECT_EQ(count_of(r, "no_caption"), 1);
  EXPECT_EQ(count_of(r, "invalid_json"), 1);
  EXPECT_EQ(count_of(r, "duplicate_member"), 1);
  EXPECT_EQ(r.skipped, 2);  // invalid json and the duplicate drop no sample
}

TEST(ShardStream, CaptionsFromAJsonFieldAndImagesLocatedWithoutReading) {
  TempDir d("json");
  test::write_shard(d.str() + "/s.tar", {{"k1", {{"jpg", "IMG1"}, {"json", R"({"caption": "json caption", "n": 1})"}}},
                                         {"k2", {{"jpg", "IMG2"}, {"json", R"({"caption": 5})"}}},
                                         {"k3", {{"jpg", "IMG3"}, {"txt", "only txt"}}}});
  ShardOptions o;
  o.caption_key = "caption";
  o.read_images = false;
  std::vector<ShardSample> got;
  auto r = for_each_shard_sample({d.str() + "/s.tar"}, o, [&](ShardSample& s) { got.push_back(s); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].caption, "json caption");
  EXPECT_TRUE(got[0].image.empty());
  EXPECT_EQ(io::read_member_at(got[0].shard, got[0].image_offset, got[0].image_size), "IMG1");
  EXPECT_EQ(io::read_path_bytes(got[0].path()), "IMG1");
  EXPECT_EQ(count_of(r, "no_caption"), 2);
  // captions optional (embedding): every image comes through
  o.require_caption = false;
  got.clear();
  for_each_shard_sample({d.str() + "/s.tar"}, o, [&](ShardSample& s) { got.push_back(s); });
  EXPECT_EQ(got.size(), 3u);
  EXPECT_FALSE(got[1].has_caption);
}

TEST(ShardStream, DamagedShardsLoseOnlyTheirDamagedSamples) {
  TempDir d("damage");
  std::vector<ShardSampleSpec> s;
  for (int i = 0; i < 6; ++i) s.push_back({"00000" + std::to_string(i), {{"jpg", std::string(600, char('a' + i))}, {"txt", "c" + std::to_string(i)}}});
  auto path = test::write_shard(d.str() + "/good.tar", s);
  std::string bytes = read_file(path);
  // corrupt the header of sample 2's image (each sample: jpg 512+1024, txt 512+512 = 2560 bytes)
  std::string corrupt = bytes;
  corrupt[2 * 2560 + 3] ^= 0x40;
  write_file_atomic(d.str() + "/corrupt.tar", corrupt);
  // cut sample 4's image
  write_file_atomic(d.str() + "/truncated.tar", bytes.substr(0, 4 * 2560 + 700));
  std::vector<std::string> keys;
  auto r = for_each_shard_sample({d.str() + "/corrupt.tar", d.str() + "/truncated.tar"}, {},
                                 [&](ShardSample& x) { keys.push_back(x.key); });
  // corrupt: sample 2 loses its image (its caption alone is a sample without image)
  EXPECT_EQ(keys, (std::vector<std::string>{"000000", "000001", "000003", "000004", "000005",  // corrupt.tar
                                            "000000", "000001", "000002", "000003"}));         // truncated.tar
  EXPECT_EQ(count_of(r, "corrupt_header"), 1);
  EXPECT_EQ(count_of(r, "no_image"), 1);
  EXPECT_EQ(count_of(r, "truncated"), 1);
  ASSERT_NE(r.find("truncated"), nullptr);
  EXPECT_NE(r.find("truncated")->examples[0].find("truncated.tar"), std::string::npos);
}

TEST(ShardCaptions, RowsForDataCheck) {
  TempDir d("rows");
  test::write_shard(d.str() + "/00000.tar", {{"a", {{"jpg", "1"}, {"txt", "x"}}}, {"b", {{"jpg", "2"}}}});
  test::write_shard(d.str() + "/00001.tar", {{"c", {{"png", "3"}, {"txt", "z"}}}});
  auto ds = load_shard_captions(d.str() + "/{00000..00001}.tar");
  ASSERT_EQ(ds.rows.size(), 2u);
  EXPECT_EQ(ds.rows[1].caption, "z");
  EXPECT_EQ(ds.rows[1].image_path, d.str() + "/00001.tar/c.png");
  EXPECT_EQ(ds.report.skipped, 1);
  EXPECT_EQ(ds.unique_images().size(), 2u);
}

}  // namespace
}  // namespace clipkit::dataset
