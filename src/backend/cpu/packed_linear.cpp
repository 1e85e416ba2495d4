#include "backend/cpu/packed_linear.h"

#include <cmath>
#include <cstring>
#include <tuple>
#include <dnnl.hpp>

#include "core/error.h"
#include "core/profile.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "backend/cpu/dnnl_context.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/activation.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/quantize.h"
#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct PackedLinear::Impl {
  struct Prim {
    dnnl::matmul prim;
    dnnl::memory::desc wei_md;
  };
  std::map<std::tuple<int64_t, bool, int>, Prim> by_m;            // primitive per (M, epilogue)
  std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> packed;  // packed weights per layout
  dnnl::memory bias;
  std::vector<float> wscale;    // int8: the scale of each output channel (row of W)
  std::vector<int32_t> wsum;    // int8: the sum of each quantized row of W (the zero points' correction)
};

PackedLinear::PackedLinear(const float* W, const float* bias, int64_t N, int64_t K, Precision p)
    : W_(W), b_(bias), N_(N), K_(K), prec_(p) {}
PackedLinear::~PackedLinear() = default;

namespace {

dnnl::primitive_attr epilogue_attr(Act act, bool accumulate) {
  dnnl::post_ops po;
  if (accumulate) po.append_sum(1.0f);
  switch (act) {
    case Act::None: break;
    case Act::QuickGelu: po.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f); break;
    case Act::Gelu: po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f); break;
    case Act::GeluNew: po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_tanh, 0.0f, 0.0f); break;
    case Act::Relu: po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f); break;
    case Act::Tanh: po.append_eltwise(1.0f, dnnl::algorithm::eltwise_tanh, 0.0f, 0.0f); break;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  return attr;
}

// A layout without blocks (ab, ba, ...).
bool is_plain(const dnnl::memory::desc& md) {
  return md.data.format_kind == dnnl_blocked && md.data.format_desc.blocking.inner_nblks == 0;
}

}  // namespace

void PackedLinear::forward(const float* x, int64_t M, float* y, Act act, bool accumulate) const {
  const bool int8 = prec_ == Precision::INT8;
  ProfileScope prof(int8 ? "matmul int8" : prec_ == Precision::BF16 ? "matmul bf16" : "matmul fp32");
  if (M == 0) return;
  auto& eng = cpu_engine();
  auto& strm = cpu_stream();
  // Without native bf16 / s8 kernels (an AVX2-only CPU, dnnl_matmul.h), the same product runs in
  // fp32 on the operands' bf16 or int8 values widened to fp32.
  const bool bf16 = prec_ == Precision::BF16;
  const bool widened = (bf16 && !bf16_matmul_native()) || (int8 && !int8_matmul_native());
  const dt wdt = widened ? dt::f32 : int8 ? dt::s8 : bf16 ? dt::bf16 : dt::f32;
  const dt sdt = int8 && !widened ? dt::u8 : wdt;  // int8: uint8 activations x int8 weights -> int32
  const dnnl::memory::desc src_md({M, K_}, sdt, tag::ab);
  const dnnl::memory::desc dst_md({M, N_}, int8 && !widened ? dt::s32 : dt::f32, tag::ab);
  const dnnl::memory::desc bias_md({1, N_}, dt::f32, tag::ab);
  const dnnl::memory::desc w_md({K_, N_}, dt::f32, tag::ba);  // W [N, K] as given: W^T in "ba" order
  const bool fp32_weights = prec_ == Precision::F32 && !widened;  // W's own values go to the kernel
  const bool fused_bias = b_ && !int8;  // int8 adds the bias after scaling, in its epilogue
  Impl::Prim prim;  // dnnl handles are reference-counted: a copy stays valid if the cache is cleared
  dnnl::memory wei, bias_mem;
  const float* wscale = nullptr;
  const int32_t* wsum = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!impl_) {
      impl_ = std::make_unique<Impl>();
      if (fused_bias) impl_->bias = dnnl::memory(bias_md, eng, const_cast<float*>(b_));
    }
    const auto key = int8 ? std::make_tuple(M, false, 0) : std::make_tuple(M, accumulate, static_cast<int>(act));
    auto it = impl_->by_m.find(key);
    if (it == impl_->by_m.end()) {
      if (impl_->by_m.size() > 256) impl_->by_m.clear();  // bound the cache (text batches vary in length)
      auto make_pd = [&](const dnnl::memory::desc& wei_md) {
        auto d = fused_bias ? dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md)
                            : dnnl::matmul::desc(src_md, wei_md, dst_md);
        return dnnl::matmul::primitive_desc(d, int8 ? dnnl::primitive_attr() : epilogue_attr(act, accumulate), eng);
      };
      auto pd = make_pd(dnnl::memory::desc({K_, N_}, wdt, tag::any));
      // A kernel that wants plain fp32 weights (AVX2's gemm:jit packs panels itself) reads W [N, K]
      // where it is, as W^T in "ba" order: no transposed copy of every weight matrix at the first
      // batch (ViT-B/32: 340 MB to allocate, fault in and fill).
      if (fp32_weights && is_plain(pd.weights_desc())) {
        auto direct = make_pd(w_md);
        if (direct.weights_desc() == w_md) pd = direct;
      }
      it = impl_->by_m.emplace(key, Impl::Prim{dnnl::matmul(pd), pd.weights_desc()}).first;
    }
    prim = it->second;
    for (auto& [md, mem] : impl_->packed)
      if (md == prim.wei_md) wei = mem;
    if (!wei && fp32_weights && prim.wei_md == w_md) {
      wei = dnnl::memory(prim.wei_md, eng, const_cast<float*>(W_));
      impl_->packed.emplace_back(prim.wei_md, wei);
    }
    if (!wei) {
      // W [N, K] row-major is W^T [K, N] in "ba" order; reorder (and convert) into the packed layout.
      std::vector<int8_t> wq;
      if (int8) {
        wq.resize(static_cast<size_t>(N_ * K_));
        std::vector<float> scale(static_cast<size_t>(N_));
        quantize_rows_s8(W_, N_, K_, wq.data(), scale.data());
        if (impl_->wscale.empty()) {  // (the same for every layout)
          impl_->wscale = std::move(scale);
          impl_->wsum.resize(static_cast<size_t>(N_));
          row_sums_s8(wq.data(), N_, K_, impl_->wsum.data());
        }
      }
      std::vector<float> wf;  // widened: the bf16 or int8 weight values in fp32
      if (widened) {
        wf.resize(static_cast<size_t>(N_ * K_));
        for (size_t i = 0; i < wf.size(); ++i) wf[i] = int8 ? static_cast<float>(wq[i]) : bf16_to_f32(f32_to_bf16(W_[i]));
      }
      const bool s8 = int8 && !widened;
      dnnl::memory user({{K_, N_}, s8 ? dt::s8 : dt::f32, tag::ba}, eng,
                        widened ? static_cast<void*>(wf.data()) : s8 ? static_cast<void*>(wq.data()) : const_cast<float*>(W_));
      wei = dnnl::memory(prim.wei_md, eng);
      dnnl::reorder(user, wei).execute(strm, user, wei);
      strm.wait();
      impl_->packed.emplace_back(prim.wei_md, wei);
    }
    bias_mem = impl_->bias;
    wscale = impl_->wscale.data();
    wsum = impl_->wsum.data();
  }
  auto& ws = Workspace::local();
  const void* src = x;
  float* row_scale = nullptr;
  int32_t* row_zero = nullptr;
  if (bf16) {
    uint16_t* xb = ws.get_bf16(kLinearInputBf16, M * K_);
    ProfileScope prof_cvt("to_bf16");
    to_bf16(x, xb, M * K_);
    src = xb;
    if (widened) {
      float* xf = ws.get(kMatmulSrcF32, static_cast<size_t>(M * K_));
      widen_bf16(xb, xf, M * K_);
      src = xf;
    }
  } else if (int8) {
    auto* xq = reinterpret_cast<uint8_t*>(ws.get_s8(kLinearInputInt8, M * K_));
    row_scale = ws.get(kLinearRowScales, static_cast<size_t>(M));
    row_zero = reinterpret_cast<int32_t*>(ws.get(kLinearRowZeros, static_cast<size_t>(M)));
    quantize_rows_u8(x, M, K_, xq, row_scale, row_zero);
    src = xq;
    if (widened) {
      float* xf = ws.get(kMatmulSrcF32, static_cast<size_t>(M * K_));
      parallel_for(M * K_, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) xf[i] = static_cast<float>(xq[i]);
      }, 1 << 14);
      src = xf;
    }
  }
  float* out = int8 && accumulate ? ws.get(kLinearAccInt8, static_cast<size_t>(M * N_)) : y;
  dnnl::memory src_m(src_md, eng, const_cast<void*>(src));
  dnnl::memory dst_m(dst_md, eng, out);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst_m}};
  if (fused_bias) args[DNNL_ARG_BIAS] = bias_mem;
  prim.prim.execute(strm, args);
  strm.wait();
  if (!int8) return;
  // The exact integer sums, in out's memory (the epilogue reads them through vector loads)
  auto* acc = reinterpret_cast<int32_t*>(out);
  if (widened) {  // the fp32 product of the integer values: back to integers (exact below 2^24)
    parallel_for(M * N_, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int32_t v = static_cast<int32_t>(std::nearbyint(out[i]));
        std::memcpy(out + i, &v, sizeof v);  // (an int32 object representation in float storage)
      }
    }, 1 << 14);
  }
  act_forward_dequant(acc, row_scale, row_zero, wscale, wsum, b_, M, N_, y, act, accumulate);
}

}  // namespace clipkit::backend::cpu
