// Counter-hash dropout masks, the same bits on every backend (a backend ports these functions
// exactly and tests its keep decisions against them). Element i of the mask stream (seed, site) is
// dropped when u = (top 24 bits of splitmix64(stream + i * golden)) / 2^24 falls below p. The mask
// has no state, so any thread, in any order, in the backward pass or in a recomputed forward
// (gradient checkpointing) gets the same one back from the same (seed, site, i). constexpr, so
// the CUDA kernels call these very functions (bit-identical masks).
#pragma once
#include <cstdint>

namespace clipkit::backend {

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

}  // namespace clipkit::backend
