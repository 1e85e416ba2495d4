// Pillow's resampling resize (libImaging/Resample.c), reproduced bit for bit on RGB8 images:
// separable convolution, support scaled by the downscale factor, coefficients normalized in
// double then rounded to 22-bit fixed point, horizontal pass to uint8 first, then vertical.
// Only a window of the output is computed; every output pixel depends only on its own
// coefficients, so the window equals the same region of a full resize.
#pragma once
#include <cstddef>
#include <cstdint>

#include "image/image.h"

namespace clipkit::image {

// PIL.Image.Resampling values (as in preprocessor_config.json's "resample").
enum class Resample : int { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
bool resample_supported(int r);  // all but Nearest (which Pillow implements differently)

// Writes output pixels [wx, wx+ww) x [wy, wy+wh) of `src` (w x h, RGB8, tightly packed)
// resized to new_w x new_h, to dst (row stride dst_stride bytes). The window must lie inside
// the resized image. new_w == w and new_h == h is a copy, as in Pillow.
void resize_window(const uint8_t* src, int w, int h, int new_w, int new_h, Resample filter, int wx, int wy,
                   int ww, int wh, uint8_t* dst, size_t dst_stride);

// The whole image resized to w x h (Pillow's Image.resize).
Image resized(const Image& im, int w, int h, Resample filter);

}  // namespace clipkit::image
