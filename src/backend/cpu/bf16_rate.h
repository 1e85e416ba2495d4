// How fast this CPU core runs bf16 dot products against fp32 FMAs. AVX512_BF16's vdpbf16ps does
// twice the FLOPs of an fp32 FMA per instruction, but cores differ in how many they issue: AMD Zen 4
// and 5 issue it at the FMA rate (bf16 twice as fast as fp32), while the Intel Xeon cores measured here
// (Emerald Rapids, AMX not exposed) issue one every other cycle against two FMAs per cycle (bf16
// *half* as fast as fp32). dnnl_matmul.cpp uses the measured ratio to decide whether bf16 products run
// on oneDNN's bf16 kernels or as fp32 matmuls of the bf16 values.
#pragma once

namespace clipkit::backend::cpu {

// bf16 dot-product FLOPs per second / fp32 FMA FLOPs per second on one core, measured once (about a
// millisecond: the best of several alternating timed loops of independent instructions); 0 when the
// CPU has no AVX512_BF16.
double bf16_dot_rate_vs_fp32();

}  // namespace clipkit::backend::cpu
