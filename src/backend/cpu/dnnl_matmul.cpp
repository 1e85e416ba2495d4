#include "backend/cpu/dnnl_matmul.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "backend/cpu/bf16_rate.h"
#include "backend/cpu/dnnl_context.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/workspace.h"
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

// The same dims and strides as md, in fp32 (a bf16 operand widened for the emulation).
dnnl::memory::desc as_f32(const dnnl::memory::desc& md) {
  const auto& blk = md.data.format_desc.blocking;
  dnnl::memory::dims strides(blk.strides, blk.strides + md.data.ndims);
  return dnnl::memory::desc(md.dims(), dt::f32, strides);
}

// The elements a strided description reaches from its first: 1 + sum (dim - 1) * stride (not
// get_size(), which counts whole outer strides and so runs past a view that starts mid-buffer,
// like k and v inside the [B, L, 3C] qkv buffer).
int64_t span_elems(const dnnl::memory::desc& md) {
  const auto& blk = md.data.format_desc.blocking;
  int64_t span = 1;
  for (int i = 0; i < md.data.ndims; ++i) {
    if (md.data.dims[i] == 0) return 0;
    span += (md.data.dims[i] - 1) * blk.strides[i];
  }
  return span;
}

bool has_isa(dnnl::cpu_isa i) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & static_cast<unsigned>(i)) == static_cast<unsigned>(i);
}

// Where oneDNN has bf16 kernels, whether they beat fp32 matmuls of the bf16 values: always with AMX;
// with AVX512_BF16 alone, when the core's bf16 dot products outrun its fp32 FMAs (bf16_rate.h).
// CLIPKIT_CPU_BF16=native|fp32 overrides the measurement (benchmarks compare the two).
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
           can_build(dt::s8, dt::s8, tag::any);
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
    : src_(src), wei_(weights), dst_(dst), bias_(bias), run_src_(src), run_wei_(weights), run_dst_(dst) {
  const bool emulate = !bf16_matmul_native();
  auto widen = [&](dnnl::memory::desc& md) {
    if (emulate && md.data_type() == dt::bf16) md = as_f32(md);
  };
  widen(run_src_);
  widen(run_wei_);
  widen(run_dst_);
  auto& eng = cpu_engine();
  const bool has_bias = bias.data.ndims > 0;
  auto d = has_bias ? dnnl::matmul::desc(run_src_, run_wei_, bias, run_dst_) : dnnl::matmul::desc(run_src_, run_wei_, run_dst_);
  prim_ = dnnl::matmul(dnnl::matmul::primitive_desc(d, attr, eng));
}

void Matmul::execute(const void* src, const void* weights, void* dst, const void* bias) const {
  auto& eng = cpu_engine();
  auto& strm = cpu_stream();
  auto& ws = Workspace::local();
  auto widened = [&](const dnnl::memory::desc& user, const dnnl::memory::desc& run, const void* p, int slot) -> void* {
    if (user.data_type() == run.data_type()) return const_cast<void*>(p);
    const int64_t n = span_elems(user);
    float* w = ws.get(slot, static_cast<size_t>(n));
    widen_bf16(static_cast<const uint16_t*>(p), w, n);  // (for dst: its old values, for a sum post-op and the gaps)
    return w;
  };
  dnnl::memory sm(run_src_, eng, widened(src_, run_src_, src, kMatmulSrcF32));
  dnnl::memory wm(run_wei_, eng, widened(wei_, run_wei_, weights, kMatmulWeightsF32));
  void* d = widened(dst_, run_dst_, dst, kMatmulDstF32);
  dnnl::memory dm(run_dst_, eng, d);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl::memory(bias_, eng, const_cast<void*>(bias));
  prim_.execute(strm, args);
  strm.wait();
  if (d != dst) to_bf16(static_cast<const float*>(d), static_cast<uint16_t*>(dst), span_elems(dst_));
}

}  // namespace clipkit::backend::cpu
