#include <gtest/gtest.h>

#include "backend/attention_ref.h"
#include "fd_util.h"
#include "backend/cpu/attention.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

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
}  // namespace clipkit::backend::cpu
