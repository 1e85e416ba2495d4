// The bf16 training path's ops against their fp32 versions: results within bf16 rounding.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "core/tensor.h"
#include "bf16_util.h"
#include "fd_util.h"
#include "backend/activation_ref.h"
#include "backend/cpu/activation.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/plain_linear.h"
#include "backend/flop_count.h"
#include "backend/cpu/matmul_bf16.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

TEST(Bf16TrainingOps, VectorConversionMatchesScalar) {
  std::vector<float> v = randn(1000, 30, 100.0f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (float f : {0.0f, -0.0f, inf, -inf, nan, -nan, 1e-40f, -1e-40f, 3.4e38f, 1.00390625f, 1.01171875f, 1.0078125f})
    v.push_back(f);
  const auto b = bf16(v);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(b[i], f32_to_bf16(v[i])) << v[i];
}

TEST(Bf16TrainingOps, DenseTracksFp32) {
  const int64_t M = 37, N = 48, K = 72;
  auto x = randn(M * K, 31), W = randn(N * K, 32, 0.1f), b = randn(N, 33), r = randn(M * N, 34);
  const auto xb = bf16(x), Wb = bf16(W);
  std::vector<float> y(M * N), yb(M * N);
  linear_forward(x.data(), W.data(), b.data(), M, N, K, y.data());
  linear_forward_bf16(xb.data(), Wb.data(), b.data(), M, N, K, yb.data());
  EXPECT_GRAD_NEAR("bf16 forward", yb.data(), to_f64(y), 2e-2);
  std::vector<float> dx(M * K), dW(N * K, 0.0f), db(N, 0.0f), dxb(M * K, 7.0f), dWb(N * K, 0.0f), dbb(N, 0.0f);
  linear_backward(x.data(), W.data(), r.data(), M, N, K, dx.data(), dW.data(), db.data());
  linear_backward_bf16(xb.data(), Wb.data(), r.data(), M, N, K, dxb.data(), dWb.data(), dbb.data());
  EXPECT_GRAD_NEAR("bf16 dx", dxb.data(), to_f64(dx), 2e-2);
  EXPECT_GRAD_NEAR("bf16 dW", dWb.data(), to_f64(dW), 5e-2);
  for (int64_t i = 0; i < N; ++i) EXPECT_EQ(dbb[i], db[i]) << i;  // db is fp32 either way
  // dW and db accumulate; dx accumulates on request
  auto dW2 = dWb, dx2 = dxb;
  linear_backward_bf16(xb.data(), Wb.data(), r.data(), M, N, K, dx2.data(), dW2.data(), nullptr, true);
  for (size_t i = 0; i < dW2.size(); ++i) EXPECT_NEAR(dW2[i], 2 * dWb[i], 1e-4) << i;
  for (size_t i = 0; i < dx2.size(); ++i) EXPECT_NEAR(dx2[i], 2 * dxb[i], 1e-4) << i;
}

// matmul_bf16 in every layout it takes (either operand transposed, padded leading dimensions, bias,
// accumulation, bf16 output into a strided C) is the product of the bf16 values summed in fp32:
// within fp32 summation error of a float64 product, whichever kernels run it (bf16 ones, or sgemm
// on the widened values: this test's default and *.avx2 runs take the second, *.bf16_native the
// first where the CPU has them), and C's padding is left alone.
TEST(Bf16TrainingOps, MatmulIsTheProductOfTheBf16ValuesInEveryLayout) {
  const int64_t M = 19, N = 23, K = 37, pad = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int variant = 0; variant < 4; ++variant) {  // 0 plain, 1 bias, 2 accumulate + bias, 3 bf16 C
        const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        const auto A = bf16(randn((ta ? K : M) * lda, 81)), B = bf16(randn((tb ? N : K) * ldb, 82));
        const auto bias = randn(N, 83), C0 = randn(M * ldc, 84);
        auto a = [&](int64_t i, int64_t k) { return static_cast<double>(bf16_to_f32(A[ta ? k * lda + i : i * lda + k])); };
        auto b = [&](int64_t k, int64_t j) { return static_cast<double>(bf16_to_f32(B[tb ? j * ldb + k : k * ldb + j])); };
        std::vector<float> C = C0;
        std::vector<uint16_t> Cb(M * ldc, 0x7fc0);  // NaN in the padding: must stay
        const float* bp = variant == 1 || variant == 2 ? bias.data() : nullptr;
        if (variant == 3) matmul_bf16_to_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, Cb.data(), ldc, bias.data());
        else matmul_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, variant == 2 ? 1.0f : 0.0f, C.data(), ldc, bp);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const std::string at = "ta " + std::to_string(ta) + " tb " + std::to_string(tb) + " variant " +
                                   std::to_string(variant) + " at " + std::to_string(i) + "," + std::to_string(j);
            if (j >= N) {  // padding
              if (variant == 3) ASSERT_EQ(Cb[i * ldc + j], 0x7fc0) << at;
              else ASSERT_EQ(C[i * ldc + j], C0[i * ldc + j]) << at;
              continue;
            }
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; ++k) {
              ref += a(i, k) * b(k, j);
              mag += std::fabs(a(i, k) * b(k, j));
            }
            if (bp || variant == 3) ref += bias[j], mag += std::fabs(bias[j]);
            if (variant == 2) ref += C0[i * ldc + j], mag += std::fabs(C0[i * ldc + j]);
            if (variant == 3) {
              ASSERT_NEAR(bf16_to_f32(Cb[i * ldc + j]), ref, 1e-5 * mag + std::fabs(ref) / 256) << at;  // bf16's half ulp
            } else {
              ASSERT_NEAR(C[i * ldc + j], ref, 1e-5 * mag) << at;
            }
          }
      }
}

// round_to_bf16 writes the bits to_bf16 writes and, widened, exactly their values (NaN bits too).
TEST(Bf16TrainingOps, RoundToBf16WritesTheBitsAndTheirValues) {
  std::vector<float> v = randn(70000, 35, 100.0f);  // more than one parallel block
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (float f : {0.0f, -0.0f, inf, -inf, nan, -nan, 1e-40f, -1e-40f, 3.4e38f, 1.00390625f, 1.01171875f, 1.0078125f})
    v.push_back(f);
  const int64_t n = static_cast<int64_t>(v.size());
  const auto want = bf16(v);
  std::vector<uint16_t> bits(v.size(), 1), bits_only(v.size(), 1);
  std::vector<float> wide(v.size(), 1.0f), wide_only(v.size(), 1.0f);
  round_to_bf16(v.data(), bits.data(), wide.data(), n);
  round_to_bf16(v.data(), bits_only.data(), nullptr, n);
  round_to_bf16(v.data(), nullptr, wide_only.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(bits[i], want[i]) << v[i];
    ASSERT_EQ(bits_only[i], want[i]) << v[i];
    ASSERT_EQ(std::bit_cast<uint32_t>(wide[i]), uint32_t{want[i]} << 16) << v[i];
    ASSERT_EQ(std::bit_cast<uint32_t>(wide_only[i]), uint32_t{want[i]} << 16) << v[i];
  }
}

// Operands handed over already widened (Bf16Operand's wide values, as the training linear keeps
// its weights and dy where products run widened) give the product of the bits, bit for bit, in
// every layout; with bf16 kernels (*.bf16_native) the bits are what the kernels read.
TEST(Bf16TrainingOps, PreWidenedOperandsGiveTheSameProduct) {
  const int64_t M = 19, N = 23, K = 37, pad = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad;
      const auto A = bf16(randn((ta ? K : M) * lda, 91)), B = bf16(randn((tb ? N : K) * ldb, 92));
      const auto Aw = from_bf16(A), Bw = from_bf16(B), bias = randn(N, 93);
      std::vector<float> want(M * N), got(M * N);
      std::vector<uint16_t> want_b(M * N), got_b(M * N);
      matmul_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, 0.0f, want.data(), N, bias.data());
      matmul_bf16_to_bf16(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, want_b.data(), N, bias.data());
      for (int wide = 1; wide < 4; ++wide) {  // bit 0: A given widened, bit 1: B
        const Bf16Operand a(A.data(), wide & 1 ? Aw.data() : nullptr), b(B.data(), wide & 2 ? Bw.data() : nullptr);
        matmul_bf16(ta, tb, M, N, K, a, lda, b, ldb, 0.0f, got.data(), N, bias.data());
        matmul_bf16_to_bf16(ta, tb, M, N, K, a, lda, b, ldb, got_b.data(), N, bias.data());
        for (int64_t i = 0; i < M * N; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << ta << tb << wide << " " << i;
          ASSERT_EQ(got_b[i], want_b[i]) << ta << tb << wide << " " << i;
        }
      }
    }
  if (bf16_matmul_native()) return;
  // products run widened: the bits need not exist at all
  const auto A = bf16(randn(M * K, 94)), B = bf16(randn(N * K, 95));
  const auto Aw = from_bf16(A), Bw = from_bf16(B);
  std::vector<float> want(M * N), got(M * N);
  matmul_bf16(false, true, M, N, K, A.data(), K, B.data(), K, 0.0f, want.data(), N);
  matmul_bf16(false, true, M, N, K, Bf16Operand(nullptr, Aw.data()), K, Bf16Operand(nullptr, Bw.data()), K, 0.0f,
              got.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i;
}

// With the activation's backward taken inside the pass that sums db and rounds dy (rows of whole
// 8-lane groups), dx, dW and db are bit for bit those of act_backward followed by the plain
// backward; so are they where it cannot be (no db, or rows of 76), first and accumulating writes.
TEST(Bf16TrainingOps, DenseTakesTheActivationBackwardInItsDyPass) {
  for (const int64_t N : {72, 76})
    for (Act act : {Act::QuickGelu, Act::Gelu})
      for (bool with_db : {true, false})
        for (bool acc : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "N " << N << " " << act_name(act) << " db " << with_db << " acc " << acc);
          const int64_t M = 45, K = 40;
          const auto xb = bf16(randn(M * K, 101)), Wb = bf16(randn(N * K, 102, 0.1f));
          const auto pre = randn(M * N, 103), dy = randn(M * N, 104);
          std::vector<float> g(M * N);
          act_backward(pre.data(), dy.data(), g.data(), M * N, act);
          std::vector<float> dx0(M * K, 0.5f), dW0(N * K, 0.25f), db0(N, 0.125f), dx1 = dx0, dW1 = dW0, db1 = db0;
          linear_backward_bf16(xb.data(), Wb.data(), g.data(), M, N, K, dx0.data(), dW0.data(),
                               with_db ? db0.data() : nullptr, acc, acc);
          std::vector<float> d = dy;
          linear_backward_bf16(xb.data(), Wb.data(), d.data(), M, N, K, dx1.data(), dW1.data(),
                               with_db ? db1.data() : nullptr, acc, acc, pre.data(), act);
          for (int64_t i = 0; i < M * K; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(dx1[i]), std::bit_cast<uint32_t>(dx0[i])) << i;
          for (int64_t i = 0; i < N * K; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(dW1[i]), std::bit_cast<uint32_t>(dW0[i])) << i;
          for (int64_t i = 0; i < N; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(db1[i]), std::bit_cast<uint32_t>(db0[i])) << i;
        }
}

// The training linear's bf16 backward rounds dy once for both products (bits for bf16 kernels, the
// rounded values in fp32 for widened products): dx and dW equal the products of bf16(dy) computed
// on their own, bit for bit, and the forward takes the weights widened or as bits alike.
TEST(Bf16TrainingOps, DenseRoundsDyOnceForBothProducts) {
  const int64_t M = 45, N = 72, K = 40;
  const auto x = randn(M * K, 96), W = randn(N * K, 97, 0.1f), dy = randn(M * N, 98), b = randn(N, 99);
  const auto xb = bf16(x), Wb = bf16(W), dyb = bf16(dy);
  const auto Ww = from_bf16(Wb);
  std::vector<float> want_dx(M * K), want_dW(N * K);
  matmul_bf16(false, false, M, K, N, dyb.data(), N, Wb.data(), K, 0.0f, want_dx.data(), K);
  weight_grad_bf16(M, N, K, dyb.data(), xb.data(), want_dW.data());
  for (bool with_db : {true, false}) {  // dy rounded in the bias-gradient pass, or on its own
    std::vector<float> dx(M * K), dW(N * K), db(N), g = dy;
    linear_backward_bf16(xb.data(), Bf16Operand(Wb.data(), Ww.data()), g.data(), M, N, K, dx.data(), dW.data(),
                         with_db ? db.data() : nullptr, false, false);
    for (int64_t i = 0; i < M * K; ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(dx[i]), std::bit_cast<uint32_t>(want_dx[i])) << with_db << " " << i;
    for (int64_t i = 0; i < N * K; ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(dW[i]), std::bit_cast<uint32_t>(want_dW[i])) << with_db << " " << i;
  }
  std::vector<float> y(M * N), yw(M * N);
  linear_forward_bf16(xb.data(), Wb.data(), b.data(), M, N, K, y.data());
  linear_forward_bf16(Bf16Operand(xb.data(), from_bf16(xb).data()), Bf16Operand(Wb.data(), Ww.data()), b.data(), M, N,
                      K, yw.data());
  for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(yw[i]), std::bit_cast<uint32_t>(y[i])) << i;
}

// A bf16-output product is the fp32 product rounded (to nearest even), bit for bit.
TEST(Bf16TrainingOps, DenseBf16OutputIsTheRoundedProduct) {
  const int64_t M = 45, N = 72, K = 40;
  const auto xb = bf16(randn(M * K, 61)), Wb = bf16(randn(N * K, 62, 0.1f));
  const auto b = randn(N, 63);
  std::vector<float> y(M * N);
  std::vector<uint16_t> yb(M * N);
  linear_forward_bf16(xb.data(), Wb.data(), b.data(), M, N, K, y.data());
  linear_forward_bf16_out(xb.data(), Wb.data(), b.data(), M, N, K, yb.data());
  for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(yb[i], f32_to_bf16(y[i])) << i;
}

// The FLOP count benchmarks report: 2·M·N·K per product, whichever kernel ran it.
TEST(Bf16TrainingOps, FlopCountAddsEveryProduct) {
  const int64_t M = 6, N = 5, K = 4;
  const auto xb = bf16(randn(M * K, 71)), Wb = bf16(randn(N * K, 72)), dyb = bf16(randn(M * N, 73));
  std::vector<float> y(M * N), dW(N * K);
  reset_flop_count();
  linear_forward_bf16(xb.data(), Wb.data(), nullptr, M, N, K, y.data());
  weight_grad_bf16(M, N, K, dyb.data(), xb.data(), dW.data());
  EXPECT_EQ(flops_counted(), 2 * 2 * M * N * K);
}

// A gradient's first write of a step (accumulate_grads = false) overwrites whatever dW/db held
// (here NaN) and equals zero-then-accumulate: db bit for bit, dW within the summation order.
TEST(Bf16TrainingOps, DenseFirstWriteOverwrites) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{37, 48, 72}, {130, 67, 29}, {0, 16, 8}}) {
    auto x = randn(M * K, 51), W = randn(N * K, 52, 0.1f), r = randn(M * N, 53);
    const auto xb = bf16(x), Wb = bf16(W);
    std::vector<float> dx(M * K), dW(N * K, 0.0f), db(N, 0.0f), dW1(N * K, nan), db1(N, nan);
    linear_backward_bf16(xb.data(), Wb.data(), r.data(), M, N, K, dx.data(), dW.data(), db.data());
    linear_backward_bf16(xb.data(), Wb.data(), r.data(), M, N, K, dx.data(), dW1.data(), db1.data(), false, false);
    for (int64_t i = 0; i < N; ++i) EXPECT_EQ(db1[i], db[i]) << M << " " << i;
    for (int64_t i = 0; i < N * K; ++i) EXPECT_NEAR(dW1[i], dW[i], 1e-5 * (1 + std::fabs(dW[i]))) << M << " " << i;
    // fp32: the same contract
    std::vector<float> f(N * K, 0.0f), fb(N, 0.0f), f1(N * K, nan), fb1(N, nan);
    linear_backward(x.data(), W.data(), r.data(), M, N, K, nullptr, f.data(), fb.data());
    linear_backward(x.data(), W.data(), r.data(), M, N, K, nullptr, f1.data(), fb1.data(), Precision::F32, false, false);
    for (int64_t i = 0; i < N; ++i) EXPECT_EQ(fb1[i], fb[i]) << M << " " << i;
    for (int64_t i = 0; i < N * K; ++i) EXPECT_NEAR(f1[i], f[i], 1e-6 * (1 + std::fabs(f[i]))) << M << " " << i;
  }
}

void attention_check(bool causal, bool masked) {
  const AttentionShape s{3, 9, 2, 16};
  const int64_t n = s.B * s.L * 3 * s.C(), nc = s.B * s.L * s.C(), np = s.B * s.H * s.L * s.L;
  auto qkv = randn(n, 41), r = randn(nc, 42);
  std::vector<int32_t> mask;
  if (masked) mask = {1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  const int32_t* km = masked ? mask.data() : nullptr;
  std::vector<float> out(nc), probs(np), dqkv(n);
  attention_forward(qkv.data(), out.data(), s, causal, km, probs.data());
  attention_backward(r.data(), qkv.data(), probs.data(), dqkv.data(), s);
  const auto qkv_b = bf16(qkv);
  std::vector<uint16_t> out_b(nc), probs_b(np);
  std::vector<float> probs16(np), dqkv16(n, 123.0f);
  attention_forward_bf16(qkv_b.data(), out_b.data(), s, causal, km, probs16.data(), probs_b.data());
  EXPECT_GRAD_NEAR("probs", probs16.data(), to_f64(probs), 2e-2);
  EXPECT_GRAD_NEAR("forward", from_bf16(out_b).data(), to_f64(out), 2e-2);
  for (int64_t i = 0; i < np; ++i) EXPECT_EQ(probs_b[i], f32_to_bf16(probs16[i])) << i;
  attention_backward_bf16(r.data(), qkv_b.data(), probs16.data(), probs_b.data(), dqkv16.data(), s);
  EXPECT_GRAD_NEAR("dqkv", dqkv16.data(), to_f64(dqkv), 3e-2);
}

TEST(Bf16TrainingOps, AttentionTracksFp32) { attention_check(false, false); }
TEST(Bf16TrainingOps, AttentionCausalTracksFp32) { attention_check(true, false); }
TEST(Bf16TrainingOps, AttentionPaddingMaskTracksFp32) { attention_check(false, true); }
TEST(Bf16TrainingOps, AttentionCausalAndPaddingTracksFp32) { attention_check(true, true); }

TEST(Bf16TrainingOps, ActivationsMatchFloat64) {
  std::vector<float> x;
  for (int i = -2000; i <= 2000; ++i) x.push_back(static_cast<float>(i) * 0.005f);  // [-10, 10], odd count: tails
  for (float v : {-100.0f, -30.0f, 30.0f, 100.0f, 0.0f}) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  const auto dy = randn(x.size(), 51);
  for (Act a : {Act::QuickGelu, Act::Gelu, Act::GeluNew, Act::Relu, Act::Tanh}) {
    std::vector<float> dx(x.size());
    std::vector<uint16_t> y(x.size());
    act_forward_bf16(x.data(), y.data(), n, a);
    act_backward(x.data(), dy.data(), dx.data(), n, a);
    for (int64_t i = 0; i < n; ++i) {
      const double want = act_ref(x[i], a), dwant = dy[i] * act_grad_ref(x[i], a);
      // bf16 rounding is within 2^-8 relative; the approximations add ~1e-6
      EXPECT_NEAR(bf16_to_f32(y[i]), want, 3.92e-3 * std::fabs(want) + 1e-30) << act_name(a) << " x=" << x[i];
      EXPECT_NEAR(dx[i], dwant, 1e-5 * std::fabs(dy[i])) << act_name(a) << " x=" << x[i];
    }
  }
}

}  // namespace
}  // namespace clipkit::backend::cpu
