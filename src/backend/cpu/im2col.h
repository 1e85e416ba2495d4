// ViT patches for the patch embedding (a Conv2d with kernel = stride = P and no bias, run as
// im2col + a linear layer over the patch rows):
//   pixels [N, CH, S, S] -> cols [N*G*G, CH*P*P] ((c, ky, kx) order = the conv weight layout)
#pragma once
#include <cstdint>

#include "backend/backend.h"

namespace clipkit::backend::cpu {

void im2col_patches(const float* pixels, const PatchShape& s, float* cols);

}  // namespace clipkit::backend::cpu
