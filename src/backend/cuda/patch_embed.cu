#include "backend/cuda/patch_embed.h"

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/gemm.h"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

namespace {

// one thread per element of cols [N*G*G, CH*P*P]; im2col reads pixels, col2im writes them
template <typename T>
__global__ void patches_kernel(const float* pixels, T* cols, const float* dcols, float* dpixels, int64_t N, int64_t CH,
                               int64_t S, int64_t P) {
  const int64_t G = S / P, K = CH * P * P, total = N * G * G * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / K, k = i % K;
    const int64_t n = r / (G * G), py = (r % (G * G)) / G, px = r % G;
    const int64_t c = k / (P * P), ky = (k / P) % P, kx = k % P;
    const int64_t pix = ((n * CH + c) * S + py * P + ky) * S + px * P + kx;
    if (cols) dev::store(cols + i, pixels[pix]);
    else dpixels[pix] = dcols[i];
  }
}

template <typename T>
void launch(const float* pixels, T* cols, const float* dcols, float* dpixels, const backend::PatchShape& s, Context& ctx) {
  const int64_t n = s.patches() * s.K();
  if (n <= 0) return;
  patches_kernel<<<dev::grid_for(n, 256), 256, 0, ctx.stream()>>>(pixels, cols, dcols, dpixels, s.N, s.CH, s.S, s.P);
  CLIPKIT_LAUNCH_CHECK(patches_kernel);
}

}  // namespace

void im2col_patches(const float* pixels, const backend::PatchShape& s, float* cols, Context& ctx) {
  launch<float>(pixels, cols, nullptr, nullptr, s, ctx);
}

void im2col_patches_bf16(const float* pixels, const backend::PatchShape& s, uint16_t* cols, Context& ctx) {
  launch<uint16_t>(pixels, cols, nullptr, nullptr, s, ctx);
}

void col2im_patches(const float* dcols, const backend::PatchShape& s, float* dpixels, Context& ctx) {
  fill_zero(dpixels, sizeof(float) * s.N * s.CH * s.S * s.S, ctx.stream());
  launch<float>(nullptr, static_cast<float*>(nullptr), dcols, dpixels, s, ctx);
}

void patch_embed_forward(const float* pixels, const float* W, int64_t C, const backend::PatchShape& s, float* cols,
                         float* y, Context& ctx) {
  im2col_patches(pixels, s, cols, ctx);
  dense_forward(cols, W, nullptr, s.patches(), C, s.K(), y, ctx);
}

void patch_embed_backward(const float* dy, const float* cols, const float* W, int64_t C, const backend::PatchShape& s,
                          float* dW, float* dpixels, Context& ctx) {
  if (!dpixels) return dense_backward(cols, W, dy, s.patches(), C, s.K(), nullptr, dW, nullptr, false, true, ctx);
  ArenaScope scope(ctx.scratch());
  float* dcols = ctx.scratch().alloc<float>(s.patches() * s.K());
  dense_backward(cols, W, dy, s.patches(), C, s.K(), dcols, dW, nullptr, false, true, ctx);
  col2im_patches(dcols, s, dpixels, ctx);
}

}  // namespace clipkit::cuda
