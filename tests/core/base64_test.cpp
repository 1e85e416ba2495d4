#include "core/base64.h"

#include <gtest/gtest.h>

namespace clipkit {
namespace {

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Many"), "TWFueQ==");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode(""), "");
}

TEST(Base64, DecodesStandardUrlSafeAndRejectsGarbage) {
  std::string out;
  EXPECT_TRUE(base64_decode("aGVsbG8=", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64_decode("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64_decode("data:text/plain;base64,aGk=", &out));
  EXPECT_EQ(out, "hi");
  EXPECT_TRUE(base64_decode("-_8=", &out));  // URL-safe alphabet
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(base64_decode("a*b=", &out));
  EXPECT_FALSE(base64_decode("aGk=aGk=", &out));
  EXPECT_FALSE(base64_decode("a", &out));
}

TEST(Base64, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n : {0u, 1u, 2u, 3u, 100u, 256u}) {
    std::string out;
    ASSERT_TRUE(base64_decode(base64_encode(all.substr(0, n)), &out));
    EXPECT_EQ(out, all.substr(0, n));
  }
}

}  // namespace
}  // namespace clipkit
