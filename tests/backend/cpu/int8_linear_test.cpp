// The int8 inference path against float64 references: the row quantizers, and PackedLinear int8
// (uint8 per-token activations x int8 per-channel weights) with every epilogue.
#include <gtest/gtest.h>

#include <cmath>

#include "fd_util.h"
#include "backend/cpu/packed_linear.h"
#include "backend/cpu/quantize.h"

namespace clipkit::backend::cpu {
namespace {
using namespace clipkit::test;

struct Quantized {
  std::vector<int8_t> q;
  std::vector<float> scale;
};
Quantized quantize(const std::vector<float>& x, int64_t R, int64_t C) {
  Quantized r{std::vector<int8_t>(x.size()), std::vector<float>(static_cast<size_t>(R))};
  quantize_rows_s8(x.data(), R, C, r.q.data(), r.scale.data());
  return r;
}

struct QuantizedU8 {
  std::vector<uint8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> zero;
};
QuantizedU8 quantize_u8(const std::vector<float>& x, int64_t R, int64_t C) {
  QuantizedU8 r{std::vector<uint8_t>(x.size()), std::vector<float>(static_cast<size_t>(R)),
                std::vector<int32_t>(static_cast<size_t>(R))};
  quantize_rows_u8(x.data(), R, C, r.q.data(), r.scale.data(), r.zero.data());
  return r;
}

// Activations: each row's range including 0 onto 0..255; 0 is exactly representable, every value
// is within half a step of its dequantized value, and the row's extremes reach the ends.
TEST(Int8Quantize, ActivationRowsUseTheirWholeRange) {
  const int64_t R = 5, C = 45;
  auto x = randn(static_cast<size_t>(R * C), 6, 3.0f);
  for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(2 * C + c)] = 0;                    // all zero
  for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(3 * C + c)] = 0.25f + 0.1f * c;      // all positive
  for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(4 * C + c)] = -0.25f - 0.1f * c;     // all negative
  auto qx = quantize_u8(x, R, C);
  for (int64_t r = 0; r < R; ++r) {
    double lo = 0, hi = 0;
    for (int64_t c = 0; c < C; ++c) {
      lo = std::min(lo, double(x[static_cast<size_t>(r * C + c)]));
      hi = std::max(hi, double(x[static_cast<size_t>(r * C + c)]));
    }
    const double s = hi > lo ? (hi - lo) / 255 : 1;
    const size_t ri = static_cast<size_t>(r);
    EXPECT_NEAR(qx.scale[ri], s, 1e-6 * s) << r;
    EXPECT_NEAR(qx.zero[ri], -lo / s, 0.5 + 1e-4) << r;
    int qmin = 255, qmax = 0;
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(r * C + c);
      EXPECT_LE(std::fabs((qx.q[i] - qx.zero[ri]) * s - x[i]), 0.5 * s + 1e-6) << r << "," << c;
      qmin = std::min<int>(qmin, qx.q[i]);
      qmax = std::max<int>(qmax, qx.q[i]);
    }
    if (lo < 0) {
      EXPECT_EQ(qmin, 0) << r;  // the row's minimum maps to the bottom
    }
    if (hi > 0) {
      EXPECT_GE(qmax, 254) << r;  // and its maximum to the top (within rounding of the zero point)
    }
  }
}

TEST(Int8Quantize, RowsRoundToTheirScale) {
  const int64_t R = 6, C = 45;  // 45: two 16-wide blocks and a tail
  auto x = randn(static_cast<size_t>(R * C), 5, 3.0f);
  for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(2 * C + c)] = 0;  // an all-zero row
  auto qx = quantize(x, R, C);
  for (int64_t r = 0; r < R; ++r) {
    double amax = 0;
    for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(double(x[static_cast<size_t>(r * C + c)])));
    const double s = amax > 0 ? amax / 127 : 1;
    EXPECT_NEAR(qx.scale[static_cast<size_t>(r)], s, 1e-6 * s) << r;
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(r * C + c);
      const double want = std::nearbyint(x[i] / s);
      // ties may round either way in float; otherwise exact
      EXPECT_LE(std::fabs(qx.q[i] - want), std::fabs(std::fabs(x[i] / s - std::trunc(x[i] / s)) - 0.5) < 1e-4 ? 1 : 0)
          << r << "," << c;
    }
  }
}

// y = act(x W^T + b) (+ y): int8 against float64 on the dequantized operands (exact up to fp32
// rounding), and against the unquantized product (the quantization error itself, small).
void check_int8_linear(Act act, bool accumulate, bool bias) {
  const int64_t M = 13, N = 40, K = 70;
  auto x = randn(static_cast<size_t>(M * K), 1), W = randn(static_cast<size_t>(N * K), 2, 0.2f),
       b = randn(static_cast<size_t>(N), 3), y0 = randn(static_cast<size_t>(M * N), 4);
  PackedLinear l(W.data(), bias ? b.data() : nullptr, N, K, Precision::INT8);
  std::vector<float> y = y0;
  l.forward(x.data(), M, y.data(), act, accumulate);
  auto qx = quantize_u8(x, M, K);
  auto qw = quantize(W, N, K);
  auto act_ref = [&](double v) {
    switch (act) {
      case Act::QuickGelu: return v / (1 + std::exp(-1.702 * v));
      case Act::Relu: return v > 0 ? v : 0.0;
      default: return v;
    }
  };
  double err_q = 0, err_true = 0, ymax = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double sq = 0, st = 0;
      for (int64_t k = 0; k < K; ++k) {
        sq += double(int(qx.q[size_t(m * K + k)]) - qx.zero[size_t(m)]) * qx.scale[size_t(m)] *
              double(qw.q[size_t(n * K + k)]) * qw.scale[size_t(n)];
        st += double(x[size_t(m * K + k)]) * W[size_t(n * K + k)];
      }
      const double add = bias ? b[size_t(n)] : 0.0, base = accumulate ? y0[size_t(m * N + n)] : 0.0;
      const double got = y[size_t(m * N + n)];
      err_q = std::max(err_q, std::fabs(got - (base + act_ref(sq + add))));
      err_true = std::max(err_true, std::fabs(got - (base + act_ref(st + add))));
      ymax = std::max(ymax, std::fabs(base + act_ref(st + add)));
    }
  std::printf("  act %d accumulate %d bias %d: err vs dequantized %.2e, vs fp64 %.2e (max|y| %.2f)\n",
              static_cast<int>(act), accumulate, bias, err_q, err_true, ymax);
  EXPECT_LT(err_q, 2e-5 * ymax);
  EXPECT_LT(err_true, 2e-2 * ymax);
}

TEST(Int8Linear, MatchesDequantizedReference) {
  for (Act act : {Act::None, Act::QuickGelu, Act::Relu})
    for (bool accumulate : {false, true}) check_int8_linear(act, accumulate, true);
  check_int8_linear(Act::None, false, false);
}

}  // namespace
}  // namespace clipkit::backend::cpu
