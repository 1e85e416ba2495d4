// Float64 finite-difference checks for the ops' backward passes.
// Each test writes its op once more in double precision (the reference forward), checks the
// float op's forward against it, then checks the float backward against central differences
// of the double forward for the scalar loss sum(r * y) with fixed random weights r.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace clipkit::test {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

inline std::vector<double> to_f64(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// d/dx_i of sum(r * f(x)) by central differences in double, for every i.
inline std::vector<double> fd_grad(const std::function<std::vector<double>(const std::vector<double>&)>& f,
                                   std::vector<double> x, const std::vector<float>& r, double h = 1e-6) {
  std::vector<double> g(x.size());
  auto L = [&](const std::vector<double>& xx) {
    auto y = f(xx);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
    return s;
  };
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = L(x);
    x[i] = x0 - h;
    const double lm = L(x);
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// max |got - ref| / max(1, max |ref|) -- the per-tensor scaled error the training references use.
inline double scaled_err(const float* got, const std::vector<double>& ref) {
  double m = 0, e = 0;
  for (double v : ref) m = std::max(m, std::fabs(v));
  for (size_t i = 0; i < ref.size(); ++i) e = std::max(e, std::fabs(static_cast<double>(got[i]) - ref[i]));
  return e / std::max(1.0, m);
}

#define EXPECT_GRAD_NEAR(name, got, ref, tol)                                             \
  do {                                                                                    \
    double e_ = ::clipkit::test::scaled_err((got), (ref));                                \
    std::printf("  %-24s scaled err %.3g (tol %.3g)\n", (name), e_, (double)(tol));       \
    EXPECT_LE(e_, (tol)) << (name);                                                       \
  } while (0)

}  // namespace clipkit::test
