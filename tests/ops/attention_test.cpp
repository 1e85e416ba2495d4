#include <gtest/gtest.h>

#include "fd_util.h"
#include "ops/attention.h"

namespace clipkit::ops {
namespace {
using namespace clipkit::test;

std::vector<double> attn_ref(const std::vector<double>& qkv, const AttentionShape& s, bool causal,
                             const std::vector<int32_t>& mask) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C();
  std::vector<double> out(static_cast<size_t>(B * L * C), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> p(static_cast<size_t>(L), 0.0);
        double mx = -1e300;
        for (int64_t j = 0; j < L; ++j) {
          if ((causal && j > i) || (!mask.empty() && mask[b * L + j] == 0)) continue;
          double d = 0;
          for (int64_t k = 0; k < D; ++k) d += qkv[(b * L + i) * 3 * C + h * D + k] * qkv[(b * L + j) * 3 * C + C + h * D + k];
          p[j] = d * scale;
          mx = std::max(mx, p[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < L; ++j) {
          if ((causal && j > i) || (!mask.empty() && mask[b * L + j] == 0)) { p[j] = 0; continue; }
          p[j] = std::exp(p[j] - mx);
          z += p[j];
        }
        for (int64_t j = 0; j < L; ++j)
          for (int64_t k = 0; k < D; ++k)
            out[(b * L + i) * C + h * D + k] += p[j] / z * qkv[(b * L + j) * 3 * C + 2 * C + h * D + k];
      }
  return out;
}

void check(bool causal, bool masked) {
  const AttentionShape s{2, 5, 2, 4};
  const int64_t n = s.B * s.L * 3 * s.C();
  auto qkv = randn(n, 21), r = randn(s.B * s.L * s.C(), 22);
  std::vector<int32_t> mask;
  if (masked) mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 0};
  std::vector<float> out(s.B * s.L * s.C()), probs(s.B * s.H * s.L * s.L), dqkv(n);
  attention_forward(qkv.data(), out.data(), s, causal, masked ? mask.data() : nullptr, probs.data());
  auto Q = to_f64(qkv);
  auto f = [&](const std::vector<double>& v) { return attn_ref(v, s, causal, mask); };
  EXPECT_GRAD_NEAR("forward", out.data(), f(Q), 1e-5);
  attention_backward(r.data(), qkv.data(), probs.data(), dqkv.data(), s);
  EXPECT_GRAD_NEAR("dqkv", dqkv.data(), fd_grad(f, Q, r), 1e-5);
}

TEST(Attention, BackwardMatchesFiniteDifferences) { check(false, false); }
TEST(Attention, BackwardCausalMatchesFiniteDifferences) { check(true, false); }
TEST(Attention, BackwardPaddingMaskMatchesFiniteDifferences) { check(false, true); }
TEST(Attention, BackwardCausalAndPaddingMatchesFiniteDifferences) { check(true, true); }

}  // namespace
}  // namespace clipkit::ops
