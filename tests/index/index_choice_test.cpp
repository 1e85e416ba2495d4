// Choosing a structure for a memory budget and nprobe for a latency budget (index_choice.h).
#include "index/index_choice.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clipkit::index {
namespace {

TEST(IndexChoice, TakesTheBestCodesThatFitTheBudget) {
  auto c = index_candidates(10'000'000, 512);
  ASSERT_GE(c.size(), 6u);
  EXPECT_EQ(c[0].factory, "IVF4096,Flat");
  EXPECT_EQ(c[1].factory, "IVF8192,SQ8");
  EXPECT_EQ(c[2].factory, "OPQ256,IVF8192,PQ256");
  EXPECT_EQ(c[3].factory, "OPQ128,IVF8192,PQ128");
  for (size_t i = 1; i < c.size(); ++i) EXPECT_LT(c[i].memory_bytes, c[i - 1].memory_bytes);
  EXPECT_EQ(c[3].code_bytes, 136);
  EXPECT_NEAR(static_cast<double>(c[3].memory_bytes), 10e6 * 136, 0.02 * 10e6 * 136);
  EXPECT_EQ(choose_index(10'000'000, 512, parse_size("32G")).factory, "IVF4096,Flat");
  EXPECT_EQ(choose_index(10'000'000, 512, parse_size("6G")).factory, "IVF8192,SQ8");
  EXPECT_EQ(choose_index(10'000'000, 512, parse_size("2G")).factory, "OPQ128,IVF8192,PQ128");
  EXPECT_EQ(choose_index(10'000'000, 512, parse_size("400M")).factory, "OPQ32,IVF8192,PQ32");
  EXPECT_THROW(choose_index(10'000'000, 512, parse_size("100M")), Error);
  EXPECT_EQ(choose_index(40'000, 512, parse_size("1G")).factory, "IDMap,Flat");
  EXPECT_EQ(choose_index(1'000'000, 512, parse_size("16G")).factory, "IVF1024,Flat");  // what choose_factory gives
}

TEST(IndexChoice, ParsesAndPrintsSizes) {
  EXPECT_EQ(parse_size("8G"), int64_t{8} << 30);
  EXPECT_EQ(parse_size("512M"), int64_t{512} << 20);
  EXPECT_EQ(parse_size("1.5GiB"), int64_t{3} << 29);
  EXPECT_EQ(parse_size("100000"), 100000);
  EXPECT_EQ(parse_size("2 gb"), int64_t{2} << 30);
  EXPECT_THROW(parse_size("lots"), Error);
  EXPECT_THROW(parse_size("4Q"), Error);
  EXPECT_THROW(parse_size("0"), Error);
  EXPECT_EQ(format_size(int64_t{3} << 29), "1.50 GiB");
  EXPECT_EQ(format_size(100), "100 B");
}

TEST(IndexChoice, NprobeLadderAndPick) {
  EXPECT_EQ(nprobe_ladder(64), (std::vector<int>{1, 2, 4, 8, 12, 16, 24, 32, 48, 64}));
  std::vector<ProbePoint> sweep = {{1, 0.60, 0.1, 0.2, 0},  {4, 0.85, 0.3, 0.5, 0},  {8, 0.93, 0.6, 0.9, 0},
                                   {16, 0.96, 1.1, 1.6, 0}, {32, 0.9605, 2.2, 3.0, 0}, {64, 0.99, 4.5, 6.0, 0}};
  EXPECT_EQ(pick_nprobe(sweep, 0, 0.95).nprobe, 16);   // smallest reaching the target
  EXPECT_EQ(pick_nprobe(sweep, 0, 0.999).nprobe, 64);  // none does: the best
  EXPECT_EQ(pick_nprobe(sweep, 5, 0.95).nprobe, 64);   // best recall within 5 ms
  EXPECT_EQ(pick_nprobe(sweep, 2.5, 0.95).nprobe, 16); // 32 is not worth its time (+0.0005)
  EXPECT_EQ(pick_nprobe(sweep, 0.05, 0.95).nprobe, 1); // nothing fast enough: the fastest
}

}  // namespace
}  // namespace clipkit::index
