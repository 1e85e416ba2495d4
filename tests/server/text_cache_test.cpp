// The text embedding cache: exact-text keys, least recently used out first, rows copied intact.
#include "server/text_cache.h"

#include <gtest/gtest.h>

namespace clipkit::server {
namespace {

TEST(TextCache, KeepsTheMostRecentlyUsedRows) {
  TextCache c(2);
  const float a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, d[3] = {7, 8, 9};
  float out[3] = {};
  EXPECT_FALSE(c.get("a", out, 3));
  c.put("a", a, 3);
  c.put("b", b, 3);
  ASSERT_TRUE(c.get("a", out, 3));  // "a" is now the most recent: "b" goes first
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[2], 3);
  c.put("c", d, 3);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_FALSE(c.get("b", out, 3));
  ASSERT_TRUE(c.get("c", out, 3));
  EXPECT_EQ(out[1], 8);
  ASSERT_TRUE(c.get("a", out, 3));
  EXPECT_EQ(out[1], 2);
  EXPECT_FALSE(c.get("A", out, 3));  // exact text: no case folding
  EXPECT_FALSE(c.get("a", out, 4));  // a row of another size is not this one
}

TEST(TextCache, ZeroCapacityKeepsNothing) {
  TextCache c(0);
  const float a[1] = {1};
  float out[1];
  c.put("a", a, 1);
  EXPECT_FALSE(c.get("a", out, 1));
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace clipkit::server
