// Dropout on the attention probabilities (training): the fp32 kernels against a float64
// finite-difference check with the same deterministic mask, the bf16 path against fp32, p = 0
// against no dropout (bit for bit), and the mask's statistics and indexing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/tensor.h"
#include "backend/attention_ref.h"
#include "bf16_util.h"
#include "fd_util.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/dropout.h"
#include "backend/cpu/gemm.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

std::vector<int32_t> padding(const AttentionShape& s) {  // varying padding, never a fully masked row
  std::vector<int32_t> km;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t l = 0; l < s.L; ++l) km.push_back(l < s.L - 1 - b % 3 ? 1 : 0);
  return km;
}

void fd_check(bool causal, bool masked, float p) {
  const AttentionShape s{2, 6, 2, 4};
  const Dropout drop{p, 17, 4 * 3 + 2};
  const int64_t n = s.B * s.L * 3 * s.C();
  auto qkv = randn(n, 61), r = randn(s.B * s.L * s.C(), 62);
  std::vector<int32_t> mask = masked ? padding(s) : std::vector<int32_t>{};
  std::vector<float> out(s.B * s.L * s.C()), probs(s.B * s.H * s.L * s.L), dqkv(n);
  attention_forward(qkv.data(), out.data(), s, causal, masked ? mask.data() : nullptr, probs.data(), drop);
  auto Q = to_f64(qkv);
  auto f = [&](const std::vector<double>& v) { return attn_ref(v, s, causal, mask, drop); };
  EXPECT_GRAD_NEAR("forward", out.data(), f(Q), 1e-5);
  attention_backward(r.data(), qkv.data(), probs.data(), dqkv.data(), s, drop);
  EXPECT_GRAD_NEAR("dqkv", dqkv.data(), fd_grad(f, Q, r), 1e-5);
  // the saved probabilities are the softmax before dropout
  for (int64_t row = 0; row < s.B * s.H * s.L; ++row) {
    double sum = 0;
    for (int64_t j = 0; j < s.L; ++j) sum += probs[row * s.L + j];
    EXPECT_NEAR(sum, 1.0, 1e-5) << row;
  }
}

TEST(AttentionDropout, BackwardMatchesFiniteDifferences) { fd_check(false, false, 0.3f); }
TEST(AttentionDropout, BackwardCausalMatchesFiniteDifferences) { fd_check(true, false, 0.3f); }
TEST(AttentionDropout, BackwardPaddingMaskMatchesFiniteDifferences) { fd_check(false, true, 0.3f); }
TEST(AttentionDropout, BackwardCausalAndPaddingMatchesFiniteDifferences) { fd_check(true, true, 0.5f); }

void bf16_check(bool causal, bool masked) {
  const AttentionShape s{3, 9, 2, 16};
  const Dropout drop{0.2f, 99, 7};
  const int64_t n = s.B * s.L * 3 * s.C(), nc = s.B * s.L * s.C(), np = s.B * s.H * s.L * s.L;
  auto qkv = randn(n, 41), r = randn(nc, 42);
  std::vector<int32_t> mask = padding(s);
  const int32_t* km = masked ? mask.data() : nullptr;
  std::vector<float> out(nc), probs(np), dqkv(n);
  attention_forward(qkv.data(), out.data(), s, causal, km, probs.data(), drop);
  attention_backward(r.data(), qkv.data(), probs.data(), dqkv.data(), s, drop);
  const auto qkv_b = bf16(qkv);
  std::vector<uint16_t> out_b(nc), probs_b(np);
  std::vector<float> probs16(np), dqkv16(n, 123.0f);
  attention_forward_bf16(qkv_b.data(), out_b.data(), s, causal, km, probs16.data(), probs_b.data(), drop);
  EXPECT_GRAD_NEAR("probs", probs16.data(), to_f64(probs), 2e-2);
  EXPECT_GRAD_NEAR("forward", from_bf16(out_b).data(), to_f64(out), 2e-2);
  // probs keeps P (fp32), probs_b is bf16(P_d)
  const DropoutMask dm(drop.p, drop.seed, drop.site);
  for (int64_t i = 0; i < np; ++i) {
    const bool dropped = dropout_dropped(dm.stream, static_cast<uint64_t>(i), drop.p);
    EXPECT_EQ(probs_b[i], f32_to_bf16(dropped ? 0.0f : probs16[i] * dm.keep_scale)) << i;
  }
  attention_backward_bf16(r.data(), qkv_b.data(), probs16.data(), probs_b.data(), dqkv16.data(), s, drop);
  EXPECT_GRAD_NEAR("dqkv", dqkv16.data(), to_f64(dqkv), 3e-2);
}

TEST(AttentionDropout, Bf16TracksFp32) { bf16_check(false, false); }
TEST(AttentionDropout, Bf16CausalAndPaddingTracksFp32) { bf16_check(true, true); }

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// p = 0 runs the kernels without dropout: exactly the results of a call without the argument.
TEST(AttentionDropout, ZeroProbabilityIsExactlyNoDropout) {
  const AttentionShape s{2, 13, 3, 16};
  const Dropout zero{0.0f, 12345, 6};
  const int64_t n = s.B * s.L * 3 * s.C(), nc = s.B * s.L * s.C(), np = s.B * s.H * s.L * s.L;
  auto qkv = randn(n, 71), r = randn(nc, 72);
  const auto mask = padding(s);
  const auto qkv_b = bf16(qkv);
  for (bool causal : {false, true}) {
    std::vector<float> out0(nc), out1(nc), p0(np), p1(np), d0(n), d1(n);
    attention_forward(qkv.data(), out0.data(), s, causal, mask.data(), p0.data());
    attention_forward(qkv.data(), out1.data(), s, causal, mask.data(), p1.data(), zero);
    attention_backward(r.data(), qkv.data(), p0.data(), d0.data(), s);
    attention_backward(r.data(), qkv.data(), p1.data(), d1.data(), s, zero);
    EXPECT_TRUE(same_bits(out0, out1) && same_bits(p0, p1) && same_bits(d0, d1)) << "fp32 causal=" << causal;
    std::vector<uint16_t> ob0(nc), ob1(nc), pb0(np), pb1(np);
    attention_forward_bf16(qkv_b.data(), ob0.data(), s, causal, mask.data(), p0.data(), pb0.data());
    attention_forward_bf16(qkv_b.data(), ob1.data(), s, causal, mask.data(), p1.data(), pb1.data(), zero);
    attention_backward_bf16(r.data(), qkv_b.data(), p0.data(), pb0.data(), d0.data(), s);
    attention_backward_bf16(r.data(), qkv_b.data(), p1.data(), pb1.data(), d1.data(), s, zero);
    EXPECT_TRUE(ob0 == ob1 && pb0 == pb1 && same_bits(p0, p1) && same_bits(d0, d1)) << "bf16 causal=" << causal;
  }
}

// With one-hot values (D = L, v_j = e_j) the context row i is the dropped probability row P_d[i]:
// every entry is either 0 or exactly P * 1/(1-p), dropped where the documented hash says, and the
// dropped fraction is p.
TEST(AttentionDropout, DropsFractionPAndScalesTheRest) {
  const AttentionShape s{4, 64, 2, 64};
  const int64_t L = s.L, D = s.D, C = s.C(), C3 = 3 * C, nc = s.B * L * C, np = s.B * s.H * L * L;
  auto qkv = randn(s.B * L * C3, 81);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t j = 0; j < L; ++j)
      for (int64_t c = 0; c < C; ++c) qkv[(b * L + j) * C3 + 2 * C + c] = c % D == j ? 1.0f : 0.0f;
  for (float p : {0.1f, 0.5f}) {
    const Dropout drop{p, 2024, 10};
    const DropoutMask dm(p, drop.seed, drop.site);
    std::vector<float> out(nc), probs(np);
    attention_forward(qkv.data(), out.data(), s, false, nullptr, probs.data(), drop);
    const auto qkv_b = bf16(qkv);
    std::vector<uint16_t> out_b(nc), probs_b(np);
    std::vector<float> probs16(np);
    attention_forward_bf16(qkv_b.data(), out_b.data(), s, false, nullptr, probs16.data(), probs_b.data(), drop);
    int64_t dropped = 0, wrong = 0;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = 0; j < L; ++j) {
            const int64_t idx = ((b * s.H + h) * L + i) * L + j;
            const float pd = out[(b * L + i) * C + h * D + j];
            const bool d = dropout_dropped(dm.stream, static_cast<uint64_t>(idx), p);
            ASSERT_GT(probs[idx], 0.0f);
            dropped += pd == 0;
            wrong += d ? pd != 0 : pd != probs[idx] * (1.0f / (1.0f - p));
            wrong += (probs_b[idx] == 0) != d;  // the bf16 path drops the same entries
          }
    const double frac = double(dropped) / double(np), sigma = std::sqrt(p * (1 - p) / double(np));
    std::printf("  p %.2f: dropped %.4f of %lld (5 sigma %.4f)\n", p, frac, static_cast<long long>(np), 5 * sigma);
    EXPECT_EQ(wrong, 0) << p;
    EXPECT_NEAR(frac, p, 5 * sigma) << p;
  }
}

TEST(AttentionDropout, MasksDependOnSeedAndSite) {
  const DropoutMask a(0.5f, 1, 2), b(0.5f, 1, 3), c(0.5f, 2, 2);
  int64_t ab = 0, ac = 0;
  for (uint64_t i = 0; i < 4096; ++i) {
    ab += dropout_dropped(a.stream, i, 0.5f) != dropout_dropped(b.stream, i, 0.5f);
    ac += dropout_dropped(a.stream, i, 0.5f) != dropout_dropped(c.stream, i, 0.5f);
  }
  EXPECT_NEAR(ab / 4096.0, 0.5, 0.05);
  EXPECT_NEAR(ac / 4096.0, 0.5, 0.05);
}

// The 8-lane mask fill equals the scalar hash for any start and length (tails included).
TEST(DropoutMask, VectorFillMatchesScalarHash) {
  std::vector<float> s(200);
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
    const DropoutMask m(p, 7, 3);
    for (uint64_t i0 : {0ull, 1ull, 5ull, 1000003ull, (1ull << 40) + 3})
      for (int64_t n : {0, 1, 7, 8, 9, 31, 200}) {
        m.scales(i0, n, s.data());
        for (int64_t j = 0; j < n; ++j)
          ASSERT_EQ(s[j], dropout_dropped(m.stream, i0 + j, p) ? 0.0f : m.keep_scale) << p << " " << i0 << " " << j;
      }
  }
  EXPECT_THROW(DropoutMask(-0.1f, 0, 0), Error);
  EXPECT_THROW(DropoutMask(1.5f, 0, 0), Error);
  EXPECT_THROW(DropoutMask(std::nanf(""), 0, 0), Error);
}

TEST(AttentionDropout, InferencePathRejectsDropout) {
  const AttentionShape s{1, 4, 1, 4};
  std::vector<float> qkv(s.L * 3 * s.C(), 0.5f), out(s.L * s.C());
  EXPECT_THROW(attention_forward(qkv.data(), out.data(), s, false, nullptr, nullptr, {0.1f, 1, 2}), Error);
}

}  // namespace
}  // namespace clipkit::backend::cpu
