// Shared test helpers: paths to fixtures and tolerance-checked comparisons that print the error.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/tensor.h"

namespace clipkit::test {

inline std::string data_path(const std::string& rel) { return std::string(CLIPKIT_TEST_DATA) + "/" + rel; }

// The compute device the model and training tests run on: CLIPKIT_TEST_DEVICE (default "cpu"), so
// a new backend runs them unchanged.
inline std::string test_device() {
  const char* d = std::getenv("CLIPKIT_TEST_DEVICE");
  return d && *d ? d : "cpu";
}

// max |got - ref| over all elements; `ref` of any float dtype.
inline double max_abs_diff(const float* got, const Tensor& ref) {
  Tensor r = ref.to_f64();
  double m = 0;
  for (int64_t i = 0; i < r.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(got[i]) - r.ptr<double>()[i]));
  return m;
}

inline double max_abs(const Tensor& ref) {
  Tensor r = ref.to_f64();
  double m = 0;
  for (int64_t i = 0; i < r.numel(); ++i) m = std::max(m, std::fabs(r.ptr<double>()[i]));
  return m;
}

// The smallest cosine similarity between a row of got [N, D] (F32) and the same row of ref (any float dtype).
inline double min_row_cosine(const Tensor& got, const Tensor& ref) {
  Tensor r = ref.to_f64();
  const int64_t N = got.dim(0), D = got.dim(1);
  double worst = 1;
  for (int64_t n = 0; n < N; ++n) {
    double dot = 0, a = 0, b = 0;
    for (int64_t d = 0; d < D; ++d) {
      double x = got.ptr<float>()[n * D + d], y = r.ptr<double>()[n * D + d];
      dot += x * y; a += x * x; b += y * y;
    }
    worst = std::min(worst, dot / std::sqrt(a * b));
  }
  return worst;
}

#define EXPECT_CLOSE_TO_REF(name, got, ref, tol)                                                                 \
  do {                                                                                                           \
    double err_ = ::clipkit::test::max_abs_diff((got), (ref));                                                   \
    std::printf("  %-28s max abs err %.3g (tol %.3g, max|ref| %.3g)\n", (name), err_, (double)(tol),             \
                ::clipkit::test::max_abs(ref));                                                                  \
    EXPECT_LE(err_, (tol)) << (name);                                                                            \
  } while (0)

}  // namespace clipkit::test
