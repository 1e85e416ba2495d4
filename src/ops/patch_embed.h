// ViT patch embedding: a Conv2d with kernel = stride = P and no bias, as im2col + matmul.
//   pixels [N, CH, S, S] -> cols [N*G*G, CH*P*P] ((c, ky, kx) order = the conv weight layout)
//   y [N*G*G, C] = cols @ W^T                                        W [C, CH, P, P]
// The training tower (train/trainable_towers.cpp) runs the same composition with im2col_patches
// and its dense layer, so the bf16 path's operand copies and first-write gradients are shared.
#pragma once
#include <cstdint>

#include "ops/precision.h"

namespace clipkit::ops {

struct PatchShape {
  int64_t N, CH, S, P;
  int64_t G() const { return S / P; }
  int64_t patches() const { return N * G() * G(); }
  int64_t K() const { return CH * P * P; }
};

void im2col_patches(const float* pixels, const PatchShape& s, float* cols);
// The adjoint of im2col: dpixels (overwritten) from dcols.
void col2im_patches(const float* dcols, const PatchShape& s, float* dpixels);

// y = patchify(pixels) @ W^T; cols (the im2col buffer, [patches, K]) is kept for the backward pass.
void patch_embed_forward(const float* pixels, const float* W, int64_t C, const PatchShape& s, float* cols, float* y,
                         Precision p = Precision::F32);
// dW [C, K] accumulated; dpixels (optional, overwritten).
void patch_embed_backward(const float* dy, const float* cols, const float* W, int64_t C, const PatchShape& s, float* dW,
                          float* dpixels, Precision p = Precision::F32);

}  // namespace clipkit::ops
