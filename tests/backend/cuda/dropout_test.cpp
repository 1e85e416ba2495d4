#include <cmath>

#include "backend/cpu/dropout.h"
#include "backend/cuda/dropout.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaDropout : public CudaTest {};

TEST_F(CudaDropout, MasksAreTheCpusBitForBit) {
  const int64_t R = 37, C = 769;
  std::vector<float> x = random_vec(static_cast<size_t>(R * C), 61);
  x[5] = NAN;  // a dropped NaN is exactly 0 (and a kept one stays NaN)
  x[6] = INFINITY;
  for (float p : {0.1f, 0.5f}) {
    const backend::cpu::DropoutMask mask(p, 1234, 9);
    std::vector<float> ref(x.size());
    mask.apply(0, R * C, x.data(), ref.data());
    auto dx = up(x);
    auto y = poisoned<float>(R * C);
    dropout_apply(dx.p(), y.p(), R, C, nullptr, p, 1234, 9, ctx());
    const std::vector<float> yh = down(y);
    for (size_t i = 0; i < yh.size(); ++i)
      ASSERT_TRUE(yh[i] == ref[i] || (std::isnan(yh[i]) && std::isnan(ref[i]))) << "p " << p << " element " << i;
    // rows picked out of a padded tensor: row i is row row_ids[i] of the mask
    const std::vector<int32_t> rows = {4, 0, 30, 31, 100};
    std::vector<float> xr(x.begin(), x.begin() + 5 * C), rr(5 * C);
    for (int64_t i = 0; i < 5; ++i) mask.apply(static_cast<uint64_t>(rows[i] * C), C, xr.data() + i * C, rr.data() + i * C);
    auto dxr = up(xr);
    auto drows = up(rows);
    dropout_apply(dxr.p(), dxr.p(), 5, C, drows.p(), p, 1234, 9, ctx());  // in place
    const std::vector<float> got = down(dxr);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_TRUE(got[i] == rr[i] || (std::isnan(got[i]) && std::isnan(rr[i]))) << "rows, element " << i;
  }
  auto dx = up(x);
  auto y = poisoned<float>(R * C);
  dropout_apply(dx.p(), y.p(), R, C, nullptr, 1.0f, 1, 1, ctx());
  for (float v : down(y)) ASSERT_EQ(v, 0.0f);
  dropout_apply(dx.p(), y.p(), R, C, nullptr, 0.0f, 1, 1, ctx());  // off: a copy
  const std::vector<float> copy = down(y);
  for (size_t i = 0; i < copy.size(); ++i) ASSERT_TRUE(copy[i] == x[i] || std::isnan(x[i]));
  EXPECT_THROW(dropout_apply(dx.p(), y.p(), R, C, nullptr, 1.5f, 1, 1, ctx()), Error);
}

}  // namespace
}  // namespace clipkit::cuda
