#include "apps/retrieve.h"

#include <gtest/gtest.h>

#include "apps/thumbnail.h"
#include "image/encode.h"
#include "apps_test_util.h"
#include "core/error.h"

namespace clipkit {
namespace {

TEST(Retrieve, FiltersParse) {
  auto f = apps::Filter::parse("split=val");
  EXPECT_EQ(f.key, "split");
  EXPECT_EQ(f.op, "=");
  EXPECT_EQ(f.value, "val");
  EXPECT_EQ(apps::Filter::parse("width>=300").op, ">=");
  EXPECT_EQ(apps::Filter::parse("path~a=b").op, "~");
  EXPECT_EQ(apps::Filter::parse("path~a=b").value, "a=b");
  EXPECT_THROW(apps::Filter::parse("nothing"), Error);
  EXPECT_THROW(apps::Filter::parse("=x"), Error);
}

TEST(Retrieve, TopKWithFiltersAndThumbnails) {
  const std::string img = std::string(CLIPKIT_TEST_DATA) + "/images/chelsea.jpg";
  std::vector<apps::RetrievalItem> items = {
      {img, "a cat", {{"split", "train"}, {"width", 451}}},
      {"/data/b.jpg", "a dog", {{"split", "val"}, {"width", 200}}},
      {"/data/c.jpg", "", {{"split", "val"}, {"width", 640}}},
  };
  const float emb[3][2] = {{1, 0}, {0.6f, 0.8f}, {0, 1}};
  const float q[2] = {1, 0};
  apps::RetrieveOptions o;
  o.k = 2;
  auto j = apps::retrieve("cat", q, items, &emb[0][0], 2, o);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["path"], img);
  EXPECT_EQ(j["results"][0]["rank"], 1);
  EXPECT_NEAR(j["results"][0]["score"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(j["results"][0]["caption"], "a cat");
  EXPECT_EQ(j["results"][1]["path"], "/data/b.jpg");
  EXPECT_EQ(j["candidates"], 3);
  o.filters = {apps::Filter::parse("split=val"), apps::Filter::parse("width>300")};
  j = apps::retrieve("cat", q, items, &emb[0][0], 2, o);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["path"], "/data/c.jpg");
  o.filters = {apps::Filter::parse("caption~cat")};
  o.thumbnails = true;
  o.thumb_size = 32;
  j = apps::retrieve("cat", q, items, &emb[0][0], 2, o);
  ASSERT_EQ(j["results"].size(), 1u);
  const std::string uri = j["results"][0]["image"];
  EXPECT_EQ(uri.rfind("data:image/jpeg;base64,/9j/", 0), 0u);
  bool has_image_part = false;
  for (auto& c : j["content"]) has_image_part |= c["type"] == "image_url" && c["image_url"]["url"] == uri;
  EXPECT_TRUE(has_image_part);
  o.min_score = 1.01;
  o.filters.clear();
  EXPECT_EQ(apps::retrieve("cat", q, items, &emb[0][0], 2, o)["results"].size(), 0u);
}

TEST(Thumbnail, Fit) {
  image::Image im;
  im.width = 300, im.height = 100;
  im.rgb.assign(300 * 100 * 3, 128);
  auto t = apps::fit_within(im, 150);
  EXPECT_EQ(t.width, 150);
  EXPECT_EQ(t.height, 50);
  auto jpg = image::encode_jpeg(t, 80);
  auto back = image::decode_memory(jpg.data(), jpg.size(), "t.jpg");
  EXPECT_EQ(back.width, 150);
  EXPECT_NEAR(back.rgb[0], 128, 2);
  EXPECT_THROW(apps::thumbnail_data_uri(std::string("/nonexistent.jpg")), Error);
}

}  // namespace
}  // namespace clipkit
