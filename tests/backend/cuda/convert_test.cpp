#include <cstring>
#include <limits>

#include "backend/cuda/convert.h"
#include "cuda_test_util.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

class CudaConvert : public CudaTest {};

TEST_F(CudaConvert, Bf16RoundingIsTheCpusBitForBit) {
  std::vector<float> x = random_vec(100003, 1, 3.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, inf, -inf, 1e-40f, -1e-40f, 3.4e38f, -3.4e38f, 1.0f, 1.00390625f})
    x.push_back(v);
  // NaNs with payloads (stay quiet NaNs with their top bits), ties to even, and a carry into the exponent
  for (uint32_t u : {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fbfffffu, 0x3f808000u, 0x3f818000u, 0x3f80ffffu,
                     0x7f7fffffu, 0x007fffffu})
    x.push_back(from_bits(u));
  auto dx = up(x);
  auto dy = poisoned<uint16_t>(static_cast<int64_t>(x.size()));
  to_bf16(dx.p(), dy.p(), dx.n, ctx());
  const std::vector<uint16_t> y = down(dy);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], f32_to_bf16(x[i])) << "element " << i << " = " << x[i];

  auto dz = poisoned<float>(dx.n);
  from_bf16(dy.p(), dz.p(), dy.n, ctx());
  const std::vector<float> z = down(dz);
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = bf16_to_f32(y[i]);
    ASSERT_EQ(std::memcmp(&z[i], &want, 4), 0) << "element " << i;
  }
}

}  // namespace
}  // namespace clipkit::cuda
