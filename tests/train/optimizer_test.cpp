// AdamW with the clip coefficient folded into its step equals clipping the gradients first, bit for
// bit; the gradient norm equals a float64 reference for any thread count.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/parallel.h"

namespace clipkit::train {
namespace {

struct Buffers {
  std::vector<std::vector<float>> w, g;
  std::vector<Param> params() {
    std::vector<Param> p;
    for (size_t i = 0; i < w.size(); ++i)
      p.push_back({"p" + std::to_string(i), w[i].data(), g[i].data(), static_cast<int64_t>(w[i].size()), i % 2 == 0});
    return p;
  }
};

Buffers make(uint32_t seed) {
  std::mt19937 r(seed);
  std::normal_distribution<float> n;
  Buffers b;
  for (int64_t size : {1, 7, 16, 17, 1000, 40000}) {  // SIMD widths and their tails
    std::vector<float> w(static_cast<size_t>(size)), g(static_cast<size_t>(size));
    for (auto& x : w) x = n(r);
    for (auto& x : g) x = 3.0f * n(r);
    b.w.push_back(w);
    b.g.push_back(g);
  }
  return b;
}

TEST(Optimizer, GradNormMatchesFloat64AtAnyThreadCount) {
  Buffers b = make(1);
  double ref = 0;
  for (auto& g : b.g)
    for (float x : g) ref += static_cast<double>(x) * x;
  ref = std::sqrt(ref);
  auto p = b.params();
  const int t0 = num_threads();
  set_num_threads(1);
  const double one = grad_norm(p);
  set_num_threads(2);
  const double two = grad_norm(p);
  set_num_threads(t0);
  EXPECT_NEAR(one, ref, 1e-12 * ref);
  EXPECT_EQ(one, two);  // the same bits whatever the thread count
  EXPECT_EQ(clip_coefficient(one, 0), 1.0);
  EXPECT_EQ(clip_coefficient(one, 1e9), 1.0);
  EXPECT_DOUBLE_EQ(clip_coefficient(one, 1.0), 1.0 / (one + 1e-6));
}

TEST(Optimizer, ClipCoefficientInTheStepEqualsClippingFirst) {
  Buffers a = make(2), b = make(2);
  AdamWConfig c;
  c.weight_decay = 0.1;
  AdamW oa(a.params(), c), ob(b.params(), c);
  for (int step = 0; step < 3; ++step) {
    const double na = clip_grad_norm(a.params(), 1.0);  // scales a's gradients in place
    oa.step(1e-3);
    const double nb = grad_norm(b.params());
    ob.step(1e-3, clip_coefficient(nb, 1.0));
    ASSERT_EQ(na, nb);
    for (size_t i = 0; i < a.w.size(); ++i)
      for (size_t k = 0; k < a.w[i].size(); ++k) ASSERT_EQ(a.w[i][k], b.w[i][k]) << "tensor " << i << " element " << k;
  }
}

}  // namespace
}  // namespace clipkit::train
