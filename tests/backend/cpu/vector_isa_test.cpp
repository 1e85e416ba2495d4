// The 16-lane (AVX-512) kernels give the same bits as the 8-lane (AVX2) ones: activations and their
// gradients, the bf16 training forward, the int8 epilogue and the int8 quantizer, on lengths with
// every tail (n % 16 from 0 to 15), over a range with underflow, saturation, signed zeros,
// infinities and NaN. Skipped where the CPU has no AVX-512.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fd_util.h"
#include "backend/cpu/activation.h"
#include "backend/cpu/quantize.h"
#include "backend/cpu/vec_avx512.h"

namespace clipkit::backend::cpu {
namespace {

std::vector<float> inputs(int64_t n, unsigned seed) {
  auto x = test::randn(static_cast<size_t>(n), seed, 4.0f);
  const float special[] = {0.0f, -0.0f, 100.0f, -100.0f, 1e-30f, -1e-30f, std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < std::size(special) && i < x.size(); ++i) x[(i * 37) % x.size()] = special[i];
  return x;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// f() once on 16-lane kernels and once on 8-lane ones; each returns its outputs.
template <typename F>
auto both(F&& f) {
  avx512::disabled_for_testing = false;
  auto wide = f();
  avx512::disabled_for_testing = true;
  auto narrow = f();
  avx512::disabled_for_testing = false;
  return std::make_pair(wide, narrow);
}

class VectorIsa : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!avx512::available()) GTEST_SKIP() << "no AVX-512 on this CPU: only the 8-lane kernels run";
  }
};

TEST_F(VectorIsa, ActivationsMatchTheEightLaneKernelsBitForBit) {
  for (int64_t n : {1, 15, 16, 17, 31, 4096 + 7, 20000 + 13})
    for (Act a : {Act::QuickGelu, Act::Gelu, Act::GeluNew, Act::Relu, Act::Tanh, Act::None}) {
      const auto x = inputs(n, static_cast<unsigned>(n)), dy = inputs(n, static_cast<unsigned>(n + 1));
      auto [fw, fn] = both([&] {
        std::vector<float> y(x.size());
        act_forward(x.data(), y.data(), n, a);
        return y;
      });
      EXPECT_TRUE(same_bits(fw, fn)) << "forward " << act_name(a) << " n=" << n;
      auto [bw, bn] = both([&] {
        std::vector<float> dx(x.size());
        act_backward(x.data(), dy.data(), dx.data(), n, a);
        return dx;
      });
      EXPECT_TRUE(same_bits(bw, bn)) << "backward " << act_name(a) << " n=" << n;
      auto [hw, hn] = both([&] {
        std::vector<uint16_t> y(x.size() + 1, 0xBEEF);  // the slot past the end stays untouched
        act_forward_bf16(x.data(), y.data(), n, a);
        return y;
      });
      EXPECT_TRUE(same_bits(hw, hn)) << "bf16 forward " << act_name(a) << " n=" << n;
      EXPECT_EQ(hw.back(), 0xBEEF);
    }
}

TEST_F(VectorIsa, Int8EpilogueAndQuantizersMatchTheEightLaneKernelsBitForBit) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int32_t> big(-40000000, 40000000), zero(0, 255), sum(-100000, 100000);
  for (int64_t N : {1, 7, 16, 33, 768 + 5})
    for (bool accumulate : {false, true})
      for (Act a : {Act::QuickGelu, Act::Gelu, Act::None}) {
        const int64_t M = 5;
        std::vector<int32_t> acc(static_cast<size_t>(M * N)), rz(static_cast<size_t>(M)), csum(static_cast<size_t>(N));
        for (auto& v : acc) v = big(rng);
        for (auto& v : rz) v = zero(rng);
        for (auto& v : csum) v = sum(rng);
        const auto base = inputs(M * N, 3);
        auto rs = inputs(M, 4), cs = inputs(N, 5), bias = inputs(N, 6);
        for (auto* v : {&rs, &cs})
          for (auto& s : *v) s = std::isfinite(s) ? std::fabs(s) * 1e-6f : 1e-6f;
        auto [w, n] = both([&] {
          std::vector<float> y = base;
          act_forward_dequant(acc.data(), rs.data(), rz.data(), cs.data(), csum.data(), N % 2 ? bias.data() : nullptr,
                              M, N, y.data(), a, accumulate);
          return y;
        });
        EXPECT_TRUE(same_bits(w, n)) << "dequantize " << act_name(a) << " N=" << N << " accumulate=" << accumulate;
      }
  for (int64_t C : {1, 15, 16, 17, 768, 3072 + 9}) {
    const int64_t R = 6;
    auto x = inputs(R * C, static_cast<unsigned>(C));
    for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(C + c)] = 0.0f;                         // all zero: scale 1
    for (int64_t c = 0; c < C; ++c) x[static_cast<size_t>(2 * C + c)] = 0.5f + float(c % 7);  // all positive
    auto [w, n] = both([&] {
      std::vector<int8_t> q(static_cast<size_t>(R * C + 1), 99);
      std::vector<uint8_t> u(static_cast<size_t>(R * C + 1), 99);
      std::vector<float> scale(static_cast<size_t>(R)), uscale(scale);
      std::vector<int32_t> uzero(static_cast<size_t>(R));
      quantize_rows_s8(x.data(), R, C, q.data(), scale.data());
      quantize_rows_u8(x.data(), R, C, u.data(), uscale.data(), uzero.data());
      std::vector<float> out(scale);
      out.insert(out.end(), uscale.begin(), uscale.end());
      for (int32_t v : uzero) out.push_back(static_cast<float>(v));
      for (int8_t v : q) out.push_back(v);
      for (uint8_t v : u) out.push_back(v);
      return out;
    });
    EXPECT_TRUE(same_bits(w, n)) << "quantize C=" << C;
    EXPECT_EQ(w.back(), 99.0f);
  }
}

}  // namespace
}  // namespace clipkit::backend::cpu
