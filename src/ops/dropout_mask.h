// Counter-hash dropout masks. Element i of the mask stream (seed, site) is dropped when
// u = (top 24 bits of splitmix64(stream + i * golden)) / 2^24 falls below p. The mask has no state,
// so any thread, in any order, in the backward pass or in a recomputed forward (gradient
// checkpointing) gets the same one back from the same (seed, site, i). The three functions below
// are constexpr so that the CUDA kernels call these very functions (bit-identical masks).
#pragma once
#include <cstdint>

namespace clipkit::ops {

constexpr uint64_t dropout_stream(uint64_t seed, uint64_t site) {
  return seed * 0x9E3779B97F4A7C15ull ^ (site + 1) * 0xD1B54A32D192ED03ull;
}

// The 24 hash bits of element i (u = bits / 2^24).
constexpr uint32_t dropout_bits(uint64_t stream, uint64_t i) {
  uint64_t z = stream + i * 0x9E3779B97F4A7C15ull;  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z >> 40);
}

constexpr bool dropout_dropped(uint64_t stream, uint64_t i, float p) {
  return static_cast<float>(dropout_bits(stream, i)) * (1.0f / 16777216.0f) < p;
}

// s[j] = 0 where element i0 + j is dropped, keep_scale where it is kept (j < n); 8 lanes at a time.
void dropout_scales(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, float* s);
// y[j] = 0 where element i0 + j is dropped, x[j] * keep_scale where it is kept (y may be x).
void dropout_mask_apply(uint64_t stream, uint64_t i0, int64_t n, float p, float keep_scale, const float* x, float* y);

// One mask stream with its inverted-dropout scale: p in [0, 1] (else clipkit::fail), kept
// elements are multiplied by keep_scale = 1 / (1 - p).
struct DropoutMask {
  float p = 0, keep_scale = 1;
  uint64_t stream = 0;
  DropoutMask(float p, uint64_t seed, uint64_t site);
  // s[j] for elements i0 .. i0 + n - 1 (see dropout_scales)
  void scales(uint64_t i0, int64_t n, float* s) const { dropout_scales(stream, i0, n, p, keep_scale, s); }
  // y = dropout(x) for elements i0 .. i0 + n - 1 (see dropout_mask_apply)
  void apply(uint64_t i0, int64_t n, const float* x, float* y) const {
    dropout_mask_apply(stream, i0, n, p, keep_scale, x, y);
  }
};

}  // namespace clipkit::ops
