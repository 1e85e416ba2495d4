// Forward FLOP counts (2 per multiply-add), for roofline figures in benchmarks.
#pragma once
#include <cstdint>

#include "model/config.h"

namespace clipkit::model {

// matmul FLOPs of one image through the vision tower + projection
double vision_flops(const VisionConfig& c, int64_t projection_dim);
// matmul FLOPs of one text of L tokens through the text tower + projection
double text_flops(const TextConfig& c, int64_t L, int64_t projection_dim);

}  // namespace clipkit::model
