// Symmetric int8 quantization by rows, the int8 inference path's one quantizer: activations per
// token (dynamic, every call) and weights per output channel (once, when packed) are both rows.
//   scale[r] = max_c |x[r, c]| / 127 (1 for an all-zero row), q[r, c] = round_even(x[r, c] / scale[r])
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

// x [R, C] fp32 -> q [R, C] int8 in [-127, 127] and scale [R] (threaded over rows). int8 has no
// NaN or infinity: a row holding one comes out finite and meaningless.
void quantize_rows_s8(const float* x, int64_t R, int64_t C, int8_t* q, float* scale);

}  // namespace clipkit::backend::cpu
