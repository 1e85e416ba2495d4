// The matmul roofline of this machine: GFLOP/s of a large oneDNN matmul (the shape of a ViT-B MLP at
// batch 32: 1600 x 768 x 3072) in the given precision, best of 5 timed rounds. Benchmarks report
// their achieved GFLOP/s as a fraction of it.
#pragma once
#include "ops/precision.h"

namespace clipkit::ops {

double matmul_peak_gflops(Precision p);

}  // namespace clipkit::ops
