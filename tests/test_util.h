// Shared test helpers: paths to fixtures and tolerance-checked comparisons that print the error.
#pragma once
#include <gtest/gtest.h>

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

#define EXPECT_CLOSE_TO_REF(name, got, ref, tol)                                                                 \
  do {                                                                                                           \
    double err_ = ::clipkit::test::max_abs_diff((got), (ref));                                                   \
    std::printf("  %-28s max abs err %.3g (tol %.3g, max|ref| %.3g)\n", (name), err_, (double)(tol),             \
                ::clipkit::test::max_abs(ref));                                                                  \
    EXPECT_LE(err_, (tol)) << (name);                                                                            \
  } while (0)

}  // namespace clipkit::test
