// int8 quantization by rows for the int8 inference path: weights per output channel (once, when
// packed) symmetric in int8, activations per token (dynamic, every call) asymmetric in uint8, so
// the products run as u8 x s8 (VNNI's own operand types: oneDNN's s8 x s8 kernels shift the
// activations to u8 and correct the sums, 15-30% slower here) and use the row's whole range.
//   symmetric:  scale[r] = max_c |x[r, c]| / 127 (1 for an all-zero row), q[r, c] = round_even(x[r, c] / scale[r])
//   asymmetric: lo = min(min_c x[r, c], 0), hi = max(max_c x[r, c], 0), scale[r] = (hi - lo) / 255
//               (1 for an all-zero row), zero[r] = round_even(-lo / scale[r]),
//               q[r, c] = clamp(round_even(x[r, c] / scale[r]) + zero[r], 0, 255)
//               (ONNX's DynamicQuantizeLinear, per row); x ~ (q - zero) * scale
// Division by the scale is multiplication by its reciprocal, as in every vector kernel here.
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

// x [R, C] fp32 -> q [R, C] int8 in [-127, 127] and scale [R] (threaded over rows). int8 has no
// NaN or infinity: a row holding one comes out finite and meaningless.
void quantize_rows_s8(const float* x, int64_t R, int64_t C, int8_t* q, float* scale);

// sum[r] = sum_c q[r, c] (threaded over rows): a weight row's sum, the zero points' correction.
void row_sums_s8(const int8_t* q, int64_t R, int64_t C, int32_t* sum);

// x [R, C] fp32 -> q [R, C] uint8, scale [R] and zero [R] (in [0, 255]), threaded over rows; a row
// holding NaN or infinity comes out in range and meaningless.
void quantize_rows_u8(const float* x, int64_t R, int64_t C, uint8_t* q, float* scale, int32_t* zero);

}  // namespace clipkit::backend::cpu
