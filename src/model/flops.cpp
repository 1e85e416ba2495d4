#include "model/flops.h"

namespace clipkit::model {

static double encoder_flops(int64_t T, int64_t C, int64_t I, int64_t layers) {
  const double t = static_cast<double>(T), c = static_cast<double>(C), i = static_cast<double>(I);
  const double per_layer = 2 * t * c * 3 * c   // qkv
                           + 2 * 2 * t * t * c  // scores + weighted sum
                           + 2 * t * c * c      // out proj
                           + 2 * 2 * t * c * i;  // fc1 + fc2
  return per_layer * static_cast<double>(layers);
}

double vision_flops(const VisionConfig& c, int64_t P) {
  const int64_t np = c.num_patches(), T = np + 1;
  const double patch = 2.0 * np * c.num_channels * c.patch_size * c.patch_size * c.hidden_size;
  return patch + encoder_flops(T, c.hidden_size, c.intermediate_size, c.num_layers) + 2.0 * c.hidden_size * P;
}

double text_flops(const TextConfig& c, int64_t L, int64_t P) {
  return encoder_flops(L, c.hidden_size, c.intermediate_size, c.num_layers) + 2.0 * c.hidden_size * P;
}

}  // namespace clipkit::model
