// Antialiased separable resampling of RGB8 images, reproduced bit for bit in two flavours that
// share one structure (support scaled by the downscale factor, coefficients normalized in double
// then rounded to fixed point, horizontal pass to uint8 first, then vertical, integer sums):
//  - Pillow 9.4's ImagingResample (libImaging/Resample.c): 22 fraction bits;
//  - ATen's uint8 antialiased interpolation, what torchvision's resize(antialias=True) runs on a
//    uint8 CPU tensor with PyTorch >= 2.1 (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
//    _compute_index_ranges_int16_weights, and UpSampleKernelAVXAntialias.h): Keys' cubic written
//    as ATen writes it, int16 coefficients whose fraction bits are the most that keep the largest
//    weight of the whole resize below 2^15, and ATen's clamp of a tap count to the kernel size.
// Only a window of the output is computed; every output pixel depends only on its own
// coefficients, so the window equals the same region of a full resize.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "image/image.h"

namespace clipkit::image {

// PIL.Image.Resampling values (as in preprocessor_config.json's "resample").
enum class Resample : int { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
bool resample_supported(int r);  // all but Nearest (which Pillow implements differently)

// Whose arithmetic: Pillow's (every filter above), or ATen's uint8 path (Bicubic only).
enum class ResampleImpl { Pillow, AtenUint8 };

// Tests turn the SIMD passes off to compare them with the scalar code (the reference).
inline std::atomic<bool> resample_simd_disabled_for_testing{false};

// Writes output pixels [wx, wx+ww) x [wy, wy+wh) of `src` (w x h, RGB8, tightly packed)
// resized to new_w x new_h, to dst (row stride dst_stride bytes). The window must lie inside
// the resized image. new_w == w and new_h == h is a copy, as in Pillow and ATen.
void resize_window(const uint8_t* src, int w, int h, int new_w, int new_h, Resample filter, int wx, int wy,
                   int ww, int wh, uint8_t* dst, size_t dst_stride, ResampleImpl impl = ResampleImpl::Pillow);

// The input pixels that resize_window reads for that window (the union of its outputs' filter
// spans): a decoder may leave every other pixel undecoded.
PixelRect resize_window_source(int w, int h, int new_w, int new_h, Resample filter, int wx, int wy, int ww, int wh,
                               ResampleImpl impl = ResampleImpl::Pillow);

// The whole image resized to w x h (Pillow's Image.resize).
Image resized(const Image& im, int w, int h, Resample filter);

}  // namespace clipkit::image
