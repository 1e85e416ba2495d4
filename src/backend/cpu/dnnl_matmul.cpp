#include "backend/cpu/dnnl_matmul.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "backend/cpu/bf16_rate.h"
#include "backend/cpu/dnnl_context.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace clipkit::backend::cpu {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

bool can_build(dt a, dt b, tag wtag) {
  try {
    const dnnl::memory::desc src({16, 64}, a, tag::ab), wei({64, 16}, b, wtag), dst({16, 16}, dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, dst), cpu_engine());
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool has_isa(dnnl::cpu_isa i) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & static_cast<unsigned>(i)) == static_cast<unsigned>(i);
}

// Where oneDNN has bf16 kernels, whether they beat fp32 matmuls of the bf16 values: always with AMX;
// with AVX512_BF16 alone, when the core's bf16 dot products outrun its fp32 FMAs (bf16_rate.h).
// CLIPKIT_CPU_BF16=native|fp32 overrides the measurement (benchmarks compare the two); another value is
// ignored here, and the CLI warns about it (note_precision in tools/clipkit/flags.cpp: keep the two in step).
constexpr double kBf16NativeMinRatio = 0.75;

const char* bf16_override() {
  const char* e = std::getenv("CLIPKIT_CPU_BF16");
  return e && (std::strcmp(e, "native") == 0 || std::strcmp(e, "fp32") == 0) ? e : nullptr;
}

}  // namespace

bool bf16_kernels_built() {
  static const bool built = can_build(dt::bf16, dt::bf16, tag::ab);
  return built;
}

bool bf16_matmul_native() {
  static const bool native = [] {
    if (!bf16_kernels_built()) return false;
    if (const char* o = bf16_override()) return std::strcmp(o, "native") == 0;
    return has_isa(dnnl::cpu_isa::avx512_core_amx) || bf16_dot_rate_vs_fp32() >= kBf16NativeMinRatio;
  }();
  return native;
}

// Without VNNI, oneDNN multiplies int8 with vpmaddubsw, whose int16 pair sums saturate: results
// off by up to 10% of their size here (AMD Zen 3), so only VNNI CPUs count as native.
bool int8_matmul_native() {
  static const bool native = [] {
    return (has_isa(dnnl::cpu_isa::avx512_core_vnni) || has_isa(dnnl::cpu_isa::avx2_vnni)) &&
           can_build(dt::u8, dt::s8, tag::any);
  }();
  return native;
}

const char* cpu_isa_name() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41: return "sse41";
    case isa::avx: return "avx";
    case isa::avx2: return "avx2";
    case isa::avx2_vnni: return "avx2_vnni";
    case isa::avx512_mic: return "avx512_mic";
    case isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case isa::avx512_core: return "avx512_core";
    case isa::avx512_core_vnni: return "avx512_core_vnni";
    case isa::avx512_core_bf16: return "avx512_core_bf16";
    case isa::avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}

std::string emulation_note(bool int8) {
  if (int8 ? int8_matmul_native() : bf16_matmul_native()) return {};
  const std::string isa = cpu_isa_name();
  if (int8)
    return "this CPU has no VNNI instructions (oneDNN runs " + isa +
           "): int8 products run as fp32 matmuls of the int8 values, slower than fp32 precision here";
  if (!bf16_kernels_built())
    return "this CPU has no bf16 matmul instructions (AVX512_BF16 or AMX; oneDNN runs " + isa +
           "): bf16 products run as fp32 matmuls of the bf16 values, slower than fp32 precision here";
  if (bf16_override())
    return "CLIPKIT_CPU_BF16=fp32 (oneDNN runs " + isa +
           "): bf16 products run as fp32 matmuls of the bf16 values, no faster than fp32 precision";
  const double r = bf16_dot_rate_vs_fp32();
  if (r == 0)
    return "this CPU has no bf16 dot-product instructions (AVX512_BF16; oneDNN runs " + isa +
           "): bf16 products run as fp32 matmuls of the bf16 values, no faster than fp32 precision here";
  return "this CPU's bf16 dot products run below 0.75x the FLOP rate of its fp32 FMAs (measured; oneDNN runs " + isa +
         ", no AMX): bf16 products run as fp32 matmuls of the bf16 values, faster than its bf16 kernels but no "
         "faster than fp32 precision here";
}

void widen_bf16(const uint16_t* x, float* y, int64_t n) {
  parallel_for(n, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] = bf16_to_f32(x[i]);
  }, 1 << 14);
}

Matmul::Matmul(const dnnl::memory::desc& src, const dnnl::memory::desc& weights, const dnnl::memory::desc& dst,
               const dnnl::memory::desc& bias, const dnnl::primitive_attr& attr)
    : src_(src), wei_(weights), dst_(dst), bias_(bias) {
  // bf16 operands only where they run on bf16 kernels: elsewhere the callers widen them (matmul_bf16.h, attention.cpp)
  CLIPKIT_ASSERT(bf16_matmul_native() || (src.data_type() != dt::bf16 && weights.data_type() != dt::bf16 &&
                                          dst.data_type() != dt::bf16));
  auto& eng = cpu_engine();
  const bool has_bias = bias.data.ndims > 0;
  auto d = has_bias ? dnnl::matmul::desc(src, weights, bias, dst) : dnnl::matmul::desc(src, weights, dst);
  prim_ = dnnl::matmul(dnnl::matmul::primitive_desc(d, attr, eng));
}

void Matmul::execute(const void* src, const void* weights, void* dst, const void* bias) const {
  auto& eng = cpu_engine();
  auto& strm = cpu_stream();
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(src_, eng, const_cast<void*>(src))},
                                             {DNNL_ARG_WEIGHTS, dnnl::memory(wei_, eng, const_cast<void*>(weights))},
                                             {DNNL_ARG_DST, dnnl::memory(dst_, eng, dst)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl::memory(bias_, eng, const_cast<void*>(bias));
  prim_.execute(strm, args);
  strm.wait();
}

}  // namespace clipkit::backend::cpu
