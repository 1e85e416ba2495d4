#include "backend/cuda/normalize.h"

#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void l2_normalize_kernel(float* x, int64_t D) {
  float* r = x + blockIdx.x * D;
  double s = 0;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) s += static_cast<double>(r[d]) * r[d];
  s = dev::block_sum<kThreads>(s);
  const float inv = s > 0 ? static_cast<float>(1.0 / sqrt(s)) : 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) r[d] *= inv;
}

struct Lut {
  float v[3][256];
};

template <typename T>
__global__ void normalize_images_kernel(const uint8_t* hwc, int64_t N, int64_t plane, Lut lut, T* chw) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < N * plane; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = i / plane, p = i % plane;
    const uint8_t* px = hwc + i * 3;
    T* o = chw + n * 3 * plane + p;
    dev::store(o, lut.v[0][px[0]]);
    dev::store(o + plane, lut.v[1][px[1]]);
    dev::store(o + 2 * plane, lut.v[2][px[2]]);
  }
}

template <typename T>
void normalize(const uint8_t* hwc, int64_t N, int64_t H, int64_t W, const float (&lut)[3][256], T* chw, Context& ctx) {
  if (N <= 0 || H <= 0 || W <= 0) return;
  Lut l;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) l.v[c][v] = lut[c][v];
  normalize_images_kernel<<<dev::grid_for(N * H * W, 256), 256, 0, ctx.stream()>>>(hwc, N, H * W, l, chw);
  CLIPKIT_LAUNCH_CHECK(normalize_images_kernel);
}

}  // namespace

void l2_normalize_rows(float* x, int64_t N, int64_t D, Context& ctx) {
  if (N <= 0 || D <= 0) return;
  if (N > INT32_MAX) fail_msg("cuda l2_normalize_rows: too many rows");
  l2_normalize_kernel<<<static_cast<unsigned>(N), kThreads, 0, ctx.stream()>>>(x, D);
  CLIPKIT_LAUNCH_CHECK(l2_normalize_kernel);
}

void normalize_images(const uint8_t* hwc, int64_t N, int64_t H, int64_t W, const float (&lut)[3][256], float* chw,
                      Context& ctx) {
  normalize(hwc, N, H, W, lut, chw, ctx);
}

void normalize_images_bf16(const uint8_t* hwc, int64_t N, int64_t H, int64_t W, const float (&lut)[3][256],
                           uint16_t* chw, Context& ctx) {
  normalize(hwc, N, H, W, lut, chw, ctx);
}

}  // namespace clipkit::cuda
