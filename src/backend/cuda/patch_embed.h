// ViT patch embedding on the device (backend/cpu/im2col.h): a Conv2d with kernel = stride = P, no bias,
// as im2col + GEMM.
//   pixels [N, CH, S, S] -> cols [N*G*G, CH*P*P] ((c, ky, kx) order: the conv weight's layout)
//   y [N*G*G, C] = cols @ W^T          W [C, CH, P, P]
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/context.h"

namespace clipkit::cuda {

void im2col_patches(const float* pixels, const backend::PatchShape& s, float* cols, Context& ctx);
// the same into bf16 (the bf16 patch-embedding GEMM's operand)
void im2col_patches_bf16(const float* pixels, const backend::PatchShape& s, uint16_t* cols, Context& ctx);
// the adjoint: dpixels (overwritten; pixels outside the patch grid when S % P != 0 get 0)
void col2im_patches(const float* dcols, const backend::PatchShape& s, float* dpixels, Context& ctx);

// fp32: the patch embedding's forward and backward (dW accumulated, dpixels optional).
void patch_embed_forward(const float* pixels, const float* W, int64_t C, const backend::PatchShape& s, float* cols,
                         float* y, Context& ctx);
void patch_embed_backward(const float* dy, const float* cols, const float* W, int64_t C, const backend::PatchShape& s,
                          float* dW, float* dpixels, Context& ctx);

}  // namespace clipkit::cuda
