// oneDNN matmuls on the CPU, and where bf16 and int8 products run. oneDNN runs bf16 matmuls only
// where the CPU has AVX-512 (natively with AVX512_BF16 or AMX); on an AVX2-only CPU (AMD Zen 2/3,
// older Intel) it has no bf16 kernel at all, and where the core's bf16 dot products are slower than
// its fp32 FMAs (Intel Xeons without AMX: half the rate) its bf16 kernels lose to fp32 ones. There
// the callers run the same products in fp32 on the bf16 operands widened to fp32 (matmul_bf16.h,
// the training attention, packed_linear.h): a product of two bf16 numbers is exact in fp32, so the
// result differs from a native bf16 kernel's (which also accumulates in fp32) only in the order of
// the sums. bf16 results are rounded from the fp32 product as the native kernel rounds them.
#pragma once
#include <cstdint>
#include <string>

#include <dnnl.hpp>

namespace clipkit::backend::cpu {

// Whether bf16 / exact u8 x s8 (VNNI) products run on oneDNN's bf16 / int8 kernels (decided once).
// bf16: where oneDNN has bf16 kernels (bf16_kernels_built) and they pay: with AMX, or where the
// core's bf16 dot products outrun its fp32 FMAs (bf16_rate.h; CLIPKIT_CPU_BF16=native|fp32 overrides
// the measurement). Where not, bf16 and int8 products run in fp32 on the operands' values (int8:
// the integer sums are exact below 2^24 and rounded to fp32's 24 bits above).
bool bf16_kernels_built();
bool bf16_matmul_native();
bool int8_matmul_native();
// The instruction set oneDNN runs on this CPU ("avx2", "avx512_core_bf16", ...; DNNL_MAX_CPU_ISA caps it).
const char* cpu_isa_name();
// Empty where bf16 (int8 = false) or int8 (int8 = true) products run natively, else a sentence
// saying what runs instead (Backend::precision_note).
std::string emulation_note(bool int8);

class Matmul {
 public:
  Matmul() = default;
  // src [.., M, K], weights [.., K, N], dst [.., M, N] with any strides (no "any" layouts);
  // bias (f32) optional; attr may carry post-ops (a sum post-op reads dst's old values). bf16
  // operands only where bf16_matmul_native().
  Matmul(const dnnl::memory::desc& src, const dnnl::memory::desc& weights, const dnnl::memory::desc& dst,
         const dnnl::memory::desc& bias = {}, const dnnl::primitive_attr& attr = {});
  void execute(const void* src, const void* weights, void* dst, const void* bias = nullptr) const;

 private:
  dnnl::matmul prim_;
  dnnl::memory::desc src_, wei_, dst_, bias_;
};

// y[i] = float(x[i]) for n bf16 values.
void widen_bf16(const uint16_t* x, float* y, int64_t n);

}  // namespace clipkit::backend::cpu
