// Embedding normalization and image normalization on the device.
//   l2_normalize_rows: x [N, D] in place, x /= |x| (sum of squares in double; zero rows stay zero),
//     as model::l2_normalize_rows.
//   normalize_images: uint8 HWC crops [N, H, W, 3] -> float CHW [N, 3, H, W] through the per-channel
//     256-entry table of image::normalize_lut (rescale + normalize exactly as HF's float32 steps).
//     GPU preprocessing covers only this last step: decoding, resizing and cropping stay on the CPU
//     (Pillow-exact), so the result is bit-identical to image::preprocess, and a uint8 crop crosses
//     PCIe at a quarter of the float's bytes.
#pragma once
#include <cstdint>

#include "backend/cuda/context.h"

namespace clipkit::cuda {

void l2_normalize_rows(float* x, int64_t N, int64_t D, Context& ctx);

void normalize_images(const uint8_t* hwc, int64_t N, int64_t H, int64_t W, const float (&lut)[3][256], float* chw,
                      Context& ctx);
// the same written as bf16 (the bf16 patch embedding's input)
void normalize_images_bf16(const uint8_t* hwc, int64_t N, int64_t H, int64_t W, const float (&lut)[3][256],
                           uint16_t* chw, Context& ctx);

}  // namespace clipkit::cuda
