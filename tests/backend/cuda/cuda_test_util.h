// Helpers of the CUDA kernel tests: a fixture that skips without a GPU, device copies of host
// vectors (outputs poisoned with NaN so an unwritten element fails), and error measures.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/context.h"
#include "backend/cuda/memory.h"
#include "core/tensor.h"

namespace clipkit::test {

template <typename T>
struct DeviceVec {
  cuda::DeviceBuffer buf;
  int64_t n = 0;
  T* p() const { return buf.as<T>(); }
};

// A test that needs a GPU: skipped, with the runtime's reason, when there is none.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::no_device_reason();
    ctx_ = std::make_unique<cuda::Context>(0);
  }
  cuda::Context& ctx() { return *ctx_; }

  template <typename T>
  DeviceVec<T> up(const std::vector<T>& h) {
    DeviceVec<T> d{cuda::DeviceBuffer(sizeof(T) * std::max<size_t>(1, h.size())), static_cast<int64_t>(h.size())};
    cuda::copy_to_device(d.p(), h.data(), sizeof(T) * h.size(), ctx().stream());
    return d;
  }
  // n elements of NaN bytes (0xff): an output the kernel must overwrite
  template <typename T>
  DeviceVec<T> poisoned(int64_t n) {
    return up(std::vector<T>(static_cast<size_t>(n), nan_of<T>()));
  }
  template <typename T>
  std::vector<T> down(const DeviceVec<T>& d) {
    std::vector<T> h(static_cast<size_t>(d.n));
    cuda::copy_to_host(h.data(), d.p(), sizeof(T) * h.size(), ctx().stream());
    ctx().sync();
    return h;
  }
  template <typename T>
  static T nan_of() {
    T v;
    std::memset(&v, 0xff, sizeof(T));
    return v;
  }

 private:
  std::unique_ptr<cuda::Context> ctx_;
};

inline std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

inline std::vector<uint16_t> to_bf16_host(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
  return b;
}
inline std::vector<float> from_bf16_host(const std::vector<uint16_t>& b) {
  std::vector<float> v(b.size());
  for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(b[i]);
  return v;
}

// max |got - ref| / max |ref| (NaN anywhere in got counts as infinite error)
template <typename G, typename R>
double rel_err(const std::vector<G>& got, const std::vector<R>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double e = 0, m = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (!std::isfinite(g)) return INFINITY;
    e = std::max(e, std::fabs(g - r));
    m = std::max(m, std::fabs(r));
  }
  return m > 0 ? e / m : e;
}

#define EXPECT_REL_ERR(name, got, ref, tol)                                                  \
  do {                                                                                       \
    const double e_ = ::clipkit::test::rel_err((got), (ref));                               \
    std::printf("  %-34s rel err %.3g (tol %.3g)\n", (name), e_, static_cast<double>(tol)); \
    EXPECT_LE(e_, (tol)) << (name);                                                          \
  } while (0)

// fp32 kernels against the CPU: rounding differences of a few ulp per operation
constexpr double kF32Tol = 2e-5;
// bf16 operands (8 bits of mantissa), fp32 accumulation
constexpr double kBf16Tol = 2e-2;

}  // namespace clipkit::test
