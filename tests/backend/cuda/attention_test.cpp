// Attention forward and backward against float64 references (tests/backend/attention_ref.h and
// reference.h) at CLIP's sequence lengths (50 vision tokens at /32, 77 text tokens with causal and
// padding masks, 257 at ViT-L/14) and beyond one register row (300), with and without dropout.
#include "backend/cuda/attention.h"
#include "backend/cuda/fused_attention.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "fd_util.h"
#include "reference.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

struct Case {
  backend::AttentionShape s;
  bool causal, padded;
  float p;
};

class CudaAttention : public CudaTest {
 protected:
  std::vector<int32_t> key_mask(const Case& c) {
    if (!c.padded) return {};
    std::vector<int32_t> m(static_cast<size_t>(c.s.B * c.s.L), 1);
    for (int64_t b = 0; b < c.s.B; ++b)  // sequence b has L - 3b - 1 real tokens (the first is never padding)
      for (int64_t j = std::max<int64_t>(1, c.s.L - 3 * b - 1); j < c.s.L; ++j) m[b * c.s.L + j] = 0;
    return m;
  }

  void check(const Case& c, bool bf16) {
    const backend::AttentionShape& s = c.s;
    SCOPED_TRACE(::testing::Message() << "B " << s.B << " L " << s.L << " H " << s.H << " D " << s.D << " causal "
                                      << c.causal << " padded " << c.padded << " p " << c.p << (bf16 ? " bf16" : " fp32"));
    const int64_t n_qkv = s.B * s.L * 3 * s.C(), n_out = s.B * s.L * s.C(), n_p = s.B * s.H * s.L * s.L;
    std::vector<float> qkv = random_vec(static_cast<size_t>(n_qkv), 41, 1.5f);
    if (bf16) qkv = from_bf16_host(to_bf16_host(qkv));  // the reference sees the operands the kernel gets
    const std::vector<float> dout = random_vec(static_cast<size_t>(n_out), 42);
    const std::vector<int32_t> mask = key_mask(c);
    const backend::Dropout drop{c.p, 99, 3};
    const std::vector<double> X = to_f64(qkv);
    const std::vector<double> out_ref = attn_ref(X, s, c.causal, mask, drop);
    const std::vector<double> P_ref = attn_probs_ref(X, s, c.causal, mask);
    const std::vector<double> dqkv_ref = attn_backward_ref(X, to_f64(dout), s, c.causal, mask, drop);
    auto dmask = up(mask.empty() ? std::vector<int32_t>(1, 1) : mask);
    const int32_t* km = mask.empty() ? nullptr : dmask.p();
    auto probs = poisoned<float>(n_p);
    auto dqkv = poisoned<float>(n_qkv);
    auto ddout = up(dout);
    const double tol = bf16 ? kBf16Tol : kF32Tol;
    if (!bf16) {
      auto dq = up(qkv);
      auto out = poisoned<float>(n_out);
      attention_forward(dq.p(), out.p(), s, c.causal, km, probs.p(), drop, ctx());
      EXPECT_REL_ERR("out", down(out), out_ref, tol);
      attention_backward(ddout.p(), dq.p(), probs.p(), dqkv.p(), s, drop, ctx());
      if (!drop.on()) {  // inference: no probs kept, the same context
        auto out2 = poisoned<float>(n_out);
        attention_forward(dq.p(), out2.p(), s, c.causal, km, nullptr, {}, ctx());
        EXPECT_REL_ERR("out (inference)", down(out2), out_ref, tol);
      }
    } else {
      auto dq = up(to_bf16_host(qkv));
      auto out = poisoned<uint16_t>(n_out);
      auto probs_b = poisoned<uint16_t>(n_p);
      attention_forward_bf16(dq.p(), out.p(), s, c.causal, km, probs.p(), probs_b.p(), drop, ctx());
      EXPECT_REL_ERR("out", from_bf16_host(down(out)), out_ref, tol);
      // P_d = bf16(P * keep)
      const std::vector<float> P = down(probs), Pd = from_bf16_host(down(probs_b));
      const uint64_t stream = backend::dropout_stream(drop.seed, drop.site);
      const float keep_scale = drop.on() ? 1.0f / (1.0f - drop.p) : 1.0f;
      std::vector<float> Pd_want(P.size());
      for (int64_t i = 0; i < n_p; ++i)
        Pd_want[i] = bf16_to_f32(f32_to_bf16(
            drop.on() && backend::dropout_dropped(stream, static_cast<uint64_t>(i), drop.p) ? 0.0f : P[i] * keep_scale));
      EXPECT_EQ(Pd, Pd_want);
      attention_backward_bf16(ddout.p(), dq.p(), probs.p(), probs_b.p(), dqkv.p(), s, drop, ctx());
      if (!drop.on()) {
        auto out2 = poisoned<uint16_t>(n_out);
        attention_forward_bf16(dq.p(), out2.p(), s, c.causal, km, nullptr, nullptr, {}, ctx());
        EXPECT_REL_ERR("out (inference)", from_bf16_host(down(out2)), out_ref, tol);
      }
    }
    const std::vector<float> P = down(probs);
    EXPECT_REL_ERR("probs", P, P_ref, bf16 ? 1e-4 : kF32Tol);
    for (int64_t i = 0; i < n_p; ++i) {  // masked keys: exactly zero weight
      if (P_ref[i] == 0.0) {
        ASSERT_EQ(P[i], 0.0f) << "probability " << i;
      }
    }
    EXPECT_REL_ERR("dqkv", down(dqkv), dqkv_ref, bf16 ? 3e-2 : kF32Tol);
  }
};

TEST_F(CudaAttention, VisionLengthsFp32AndBf16) {
  for (bool bf16 : {false, true}) {
    check({{3, 50, 4, 16}, false, false, 0.0f}, bf16);
    check({{2, 257, 2, 32}, false, false, 0.0f}, bf16);
    check({{2, 50, 3, 64}, false, false, 0.1f}, bf16);
  }
}

TEST_F(CudaAttention, TextCausalAndPaddingMasksFp32AndBf16) {
  for (bool bf16 : {false, true}) {
    check({{3, 77, 2, 24}, true, true, 0.0f}, bf16);
    check({{4, 20, 3, 8}, false, true, 0.1f}, bf16);
    check({{2, 300, 2, 16}, false, true, 0.0f}, bf16);
  }
}

// The fused inference kernel (fused_attention.h) against the float64 reference and the batched-GEMM
// bf16 path, on odd lengths (one query, part of one tile, CLIP's 50/77/257, past four tiles), head
// sizes 16..128, several heads, causal and padding masks, and a sequence whose keys are all padding.
class CudaFusedAttention : public CudaAttention {
 protected:
  void check_fused(const backend::AttentionShape& s, bool causal, bool padded, bool all_padding = false) {
    SCOPED_TRACE(::testing::Message() << "fused B " << s.B << " L " << s.L << " H " << s.H << " D " << s.D
                                      << " causal " << causal << " padded " << padded << " all_padding " << all_padding);
    const int64_t n_qkv = s.B * s.L * 3 * s.C(), n_out = s.B * s.L * s.C();
    const std::vector<float> qkv = from_bf16_host(to_bf16_host(random_vec(static_cast<size_t>(n_qkv), 43, 1.5f)));
    std::vector<int32_t> mask = key_mask({s, causal, padded, 0.0f});
    if (all_padding) std::fill(mask.begin(), mask.begin() + s.L, 0);  // sequence 0: no key at all
    const std::vector<double> out_ref = attn_ref(to_f64(qkv), s, causal, mask, {});
    auto dq = up(to_bf16_host(qkv));
    auto dmask = up(mask.empty() ? std::vector<int32_t>(1, 1) : mask);
    const int32_t* km = mask.empty() ? nullptr : dmask.p();
    auto out = poisoned<uint16_t>(n_out), gemm_out = poisoned<uint16_t>(n_out);
    ASSERT_TRUE(fused_attention_fits(s, dq.p(), out.p()));
    fused_attention_forward(dq.p(), out.p(), s, causal, km, ctx());
    attention_forward_bf16(dq.p(), gemm_out.p(), s, causal, km, nullptr, nullptr, {}, ctx());
    const std::vector<float> got = from_bf16_host(down(out)), other = from_bf16_host(down(gemm_out));
    EXPECT_REL_ERR("fused out", got, out_ref, kBf16Tol);
    EXPECT_REL_ERR("fused vs batched-GEMM bf16", got, to_f64(other), kBf16Tol);
    for (size_t i = 0; i < got.size(); ++i) {
      if (out_ref[i] == 0.0) {
        ASSERT_EQ(got[i], 0.0f) << "element " << i << " of a row without keys";
      }
    }
  }
};

TEST_F(CudaFusedAttention, OddLengthsAndHeadSizes) {
  for (int64_t L : {1, 7, 50, 64, 65, 77, 257, 300})
    for (int64_t D : {16, 64}) check_fused({2, L, 3, D}, false, false);
  for (int64_t D : {32, 48, 80, 96, 112, 128}) check_fused({2, 50, 2, D}, false, false);
  check_fused({1, 514, 12, 64}, false, true);  // RoBERTa's longest
  check_fused({64, 50, 12, 64}, false, false);  // ViT-B/32 at a real batch
}

TEST_F(CudaFusedAttention, CausalAndPaddingMasks) {
  for (int64_t L : {1, 7, 77, 130}) {
    check_fused({3, L, 2, 64}, true, false);
    check_fused({3, L, 2, 64}, true, true);
    check_fused({3, L, 2, 32}, false, true);
  }
  check_fused({3, 77, 8, 64}, true, true, /*all_padding=*/true);
  check_fused({3, 300, 2, 80}, false, true, /*all_padding=*/true);
}

TEST_F(CudaFusedAttention, TheBackendsInferencePathIsFusedAndMatches) {
  // what CudaBackend::attention takes for a bf16 inference pass (no saved probabilities)
  const backend::AttentionShape s{4, 77, 8, 64};
  check_fused(s, true, true);
}

TEST_F(CudaAttention, DropoutWithoutProbsIsRefused) {
  auto x = poisoned<float>(3 * 4 * 2);
  auto out = poisoned<float>(4 * 2);
  EXPECT_THROW(attention_forward(x.p(), out.p(), {1, 4, 1, 2}, false, nullptr, nullptr, {0.1f, 1, 1}, ctx()), Error);
}

}  // namespace
}  // namespace clipkit::cuda
