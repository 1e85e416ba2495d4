// The attention forward paths (inference: the fused AVX-512 kernel where this CPU and the head
// width allow it, else batched oneDNN matmuls; training: the pass that saves the probabilities)
// agree with a float64 evaluation of the definition, with causal and padding masks, on odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/attention_ref.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/attention_fused.h"

namespace clipkit::backend::cpu {
namespace {

void check(AttentionShape s, bool causal, bool mask) {
  std::mt19937 rng(static_cast<unsigned>(s.B * 131 + s.L));
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> qkv(static_cast<size_t>(s.B * s.L * 3 * s.C()));
  for (auto& v : qkv) v = nd(rng);
  std::vector<int32_t> km;
  if (mask)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t l = 0; l < s.L; ++l) km.push_back(l < std::max<int64_t>(1, s.L - b % 3) ? 1 : 0);  // varying padding, never all masked
  std::vector<float> fast(static_cast<size_t>(s.B * s.L * s.C())), direct(fast.size()),
      probs(static_cast<size_t>(s.B * s.H * s.L * s.L));
  attention_forward(qkv.data(), fast.data(), s, causal, mask ? km.data() : nullptr);
  attention_forward(qkv.data(), direct.data(), s, causal, mask ? km.data() : nullptr, probs.data());
  auto ref = test::attn_ref(std::vector<double>(qkv.begin(), qkv.end()), s, causal, km);
  double e1 = 0, e2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    e1 = std::max(e1, std::fabs(fast[i] - ref[i]));
    e2 = std::max(e2, std::fabs(direct[i] - ref[i]));
  }
  EXPECT_LT(e1, 2e-5) << "inference path B=" << s.B << " L=" << s.L << " D=" << s.D;
  EXPECT_LT(e2, 2e-5) << "training path B=" << s.B << " L=" << s.L << " D=" << s.D;
  if (attention_fused_supported(s)) {  // the fused kernel itself, into an output with a sentinel past its end
    std::vector<float> fused(fast.size() + 1, 7.0f);
    attention_forward_fused(qkv.data(), fused.data(), s, causal, mask ? km.data() : nullptr);
    double e3 = 0;
    for (size_t i = 0; i < ref.size(); ++i) e3 = std::max(e3, std::fabs(fused[i] - ref[i]));
    EXPECT_LT(e3, 2e-5) << "fused kernel B=" << s.B << " L=" << s.L << " D=" << s.D;
    EXPECT_EQ(fused.back(), 7.0f);
  }
  for (int64_t r = 0; r < s.B * s.H * s.L; ++r) {  // saved probabilities are rows of a softmax
    double sum = 0;
    for (int64_t j = 0; j < s.L; ++j) sum += probs[r * s.L + j];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(AttentionPaths, AgreeWithDefinition) {
  for (bool causal : {false, true})
    for (bool mask : {false, true}) {
      check({3, 7, 2, 5}, causal, mask);
      check({2, 17, 3, 64}, causal, mask);
      check({1, 50, 12, 64}, causal, mask);
      check({2, 1, 2, 16}, causal, mask);    // one token
      check({2, 16, 2, 32}, causal, mask);   // L a multiple of 16
      check({3, 77, 2, 64}, causal, mask);   // CLIP text
      check({1, 197, 2, 48}, causal, mask);  // ViT-B/16, three 16-wide column blocks
      check({1, 70, 1, 128}, causal, mask);  // more than four column blocks in both products
    }
}

}  // namespace
}  // namespace clipkit::backend::cpu
