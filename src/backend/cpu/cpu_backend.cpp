// The CPU backend: backend.h's ops over host memory, through oneDNN and OpenMP kernels.
//   * Inference weights (WeightUse::Inference) go through PackedLinear: packed once in oneDNN's
//     layout (quantized for int8), bias/activation/residual fused as post-ops (int8: its epilogue).
//   * Training weights keep their PyTorch layout (plain_linear.h); bf16 copies of W are remade
//     once per version and the bf16 copy of x is kept for the backward (x_saved); the epilogue
//     runs as separate passes, so the pre-activation can be saved.
#include <sys/mman.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "backend/backend.h"
#include "backend/cpu/activation.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/clip_loss.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/dropout.h"
#include "backend/cpu/embedding.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/im2col.h"
#include "backend/cpu/layernorm.h"
#include "backend/cpu/optimizer.h"
#include "backend/cpu/packed_linear.h"
#include "backend/cpu/plain_linear.h"
#include "backend/cpu/workspace.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/profile.h"

namespace clipkit::backend::cpu {
namespace {

struct CpuWeight : PreparedWeight {
  CpuWeight(WeightUse u, Precision p) : use(u), precision(p) {}
  const WeightUse use;
  const Precision precision;
  std::mutex mu;
  uint64_t version = ~uint64_t{0};
  std::unique_ptr<PackedLinear> packed;  // inference
  // training in bf16: bf16(W), as bits even where products run widened (each product widens it
  // into a reused workspace; a widened copy per weight made once per version doubled the memory
  // read per product and ran no faster in `bench train`)
  std::vector<uint16_t> wb;
};

CpuWeight& cpu_weight(const LinearWeights& w) { return static_cast<CpuWeight&>(w.prepared); }

// bf16(W) of the current version, for training in bf16.
Bf16Operand bf16_weight(const LinearWeights& w) {
  CpuWeight& cw = cpu_weight(w);
  std::lock_guard<std::mutex> lock(cw.mu);
  if (cw.version != w.version || cw.wb.empty()) {
    cw.wb.resize(static_cast<size_t>(w.w.numel()));
    to_bf16(w.w.as<float>(), cw.wb.data(), w.w.numel());
    cw.version = w.version;
  }
  return Bf16Operand(cw.wb.data());
}

const float* bias_of(const LinearWeights& w) { return w.b.defined() ? w.b.as<float>() : nullptr; }

void add_into(float* dst, const float* src, int64_t n) {
  ProfileScope prof("add");
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  }, 1 << 14);
}

size_t row_bytes(const Tensor& t) { return static_cast<size_t>(t.cols()) * dtype_size(t.dtype()); }

// Large copies split across the compute threads: a model's weights (hundreds of MB, their first
// touch's page faults included) load in about 1/threads of the time.
void copy_bytes(void* dst, const void* src, size_t n) {
  constexpr size_t kBlock = size_t{1} << 18;
  if (n < 4 * kBlock) {
    std::memcpy(dst, src, n);
    return;
  }
  parallel_for(static_cast<int64_t>((n + kBlock - 1) / kBlock), [&](int64_t b, int64_t e) {
    const size_t lo = static_cast<size_t>(b) * kBlock, hi = std::min(n, static_cast<size_t>(e) * kBlock);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
  });
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string description() const override {
    const dnnl_version_t* v = dnnl_version();
    return fmt::format("oneDNN {}.{}.{}, ISA {}", v->major, v->minor, v->patch, cpu_isa_name());
  }

  // Blocks of 1 MiB and more are mapped from the kernel and unmapped when freed: malloc keeps
  // freed blocks below its dynamic mmap threshold (which grows up to 32 MiB) in the heap, and an
  // arena's blocks would then stay resident after it merged them.
  std::shared_ptr<void> allocate(size_t bytes) override {
    const size_t size = (bytes + 63) / 64 * 64;
    if (size >= (size_t{1} << 20)) {
      void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) fail("out of memory allocating {} bytes", bytes);
      return std::shared_ptr<void>(p, [size](void* q) { munmap(q, size); });
    }
    void* p = std::aligned_alloc(64, size);
    if (!p) fail("out of memory allocating {} bytes", bytes);
    return std::shared_ptr<void>(p, std::free);
  }
  void upload(const void* host, const Tensor& dst) override { copy_bytes(dst.data(), host, dst.nbytes()); }
  // In place, unless the data is not float-aligned (a safetensors header of odd length).
  Tensor borrow(const clipkit::Tensor& host, Shape s) override {
    if (reinterpret_cast<uintptr_t>(host.data) % alignof(float) != 0) return Backend::borrow(host, std::move(s));
    CLIPKIT_ASSERT(host.dtype == DType::F32 && host.numel() == clipkit::numel(s));
    return Tensor(DType::F32, std::move(s), host.data, host.holder);
  }
  void download(const Tensor& src, void* host) override { std::memcpy(host, src.data(), src.nbytes()); }
  Tensor input(Arena&, const void* host, DType t, Shape s) override {
    return Tensor(t, std::move(s), const_cast<void*>(host), nullptr);
  }
  void copy(const Tensor& src, const Tensor& dst) override {
    CLIPKIT_ASSERT(src.nbytes() == dst.nbytes());
    if (!src.same_storage(dst)) copy_bytes(dst.data(), src.data(), src.nbytes());
  }
  void zero(const Tensor& t) override { std::memset(t.data(), 0, t.nbytes()); }
  void synchronize() override {}

  std::unique_ptr<PreparedWeight> prepare_weight(WeightUse use, Precision p) override {
    if (use == WeightUse::Training && p == Precision::INT8)
      fail("int8 precision is for inference (embed, index, serve); train in fp32 or bf16");
    return std::make_unique<CpuWeight>(use, p);
  }
  DType operand_dtype(Precision p, bool training) override {
    return training && p == Precision::BF16 ? DType::BF16 : DType::F32;
  }

  void linear(const Tensor& x, const LinearWeights& w, const Epilogue& e, const Tensor& y,
              const Tensor* x_saved) override {
    CpuWeight& cw = cpu_weight(w);
    const int64_t N = w.w.dim(0), K = w.w.dim(1), M = x.rows();
    const bool in_place = e.residual && e.residual->same_storage(y);
    if (cw.use == WeightUse::Inference) {
      CLIPKIT_ASSERT(!x_saved && !e.preact && x.dtype() == DType::F32 && y.dtype() == DType::F32);
      PackedLinear* packed;
      {
        std::lock_guard<std::mutex> lock(cw.mu);
        if (!cw.packed || cw.version != w.version) {
          cw.packed = std::make_unique<PackedLinear>(w.w.as<float>(), bias_of(w), N, K, cw.precision);
          cw.version = w.version;
        }
        packed = cw.packed.get();
      }
      if (e.act == Act::None || !e.residual) {  // one fused matmul
        if (e.residual && !in_place) copy(*e.residual, y);
        return packed->forward(x.as<float>(), M, y.as<float>(), e.act, e.residual != nullptr);
      }
      float* z = Workspace::local().get(kLinearProduct, static_cast<size_t>(M * N));
      packed->forward(x.as<float>(), M, z, e.act);
      if (!in_place) copy(*e.residual, y);
      return add_into(y.as<float>(), z, M * N);
    }
    // training weights: the product z = x W^T + b, then the activation and the residual
    const bool bf16 = cw.precision == Precision::BF16;
    Bf16Operand xb(nullptr);
    if (bf16 && x.dtype() == DType::BF16) xb = Bf16Operand(x.as<uint16_t>());
    else if (bf16)  // rounded once: for the product, and into x_saved for the backward
      xb = round_operand(x.as<float>(), M * K, kGemmA, x_saved ? x_saved->as<uint16_t>() : nullptr);
    CLIPKIT_ASSERT(!x_saved || x_saved->dtype() == (bf16 ? DType::BF16 : x.dtype()));
    if (y.dtype() == DType::BF16) CLIPKIT_ASSERT(bf16 && !e.residual && (e.act == Act::None || e.preact));
    if (y.dtype() == DType::BF16 && e.act == Act::None)  // a product only bf16 matmuls read
      return linear_forward_bf16_out(xb, bf16_weight(w), bias_of(w), M, N, K, y.as<uint16_t>());
    float* z = e.preact ? e.preact->as<float>()
               : in_place ? Workspace::local().get(kLinearProduct, static_cast<size_t>(M * N))
                          : y.as<float>();
    if (bf16) linear_forward_bf16(xb, bf16_weight(w), bias_of(w), M, N, K, z);
    else linear_forward(x.as<float>(), w.w.as<float>(), bias_of(w), M, N, K, z);
    if (e.act != Act::None) {
      if (y.dtype() == DType::BF16) act_forward_bf16(z, y.as<uint16_t>(), M * N, e.act);
      else act_forward(z, in_place ? z : y.as<float>(), M * N, e.act);
    }
    if (in_place) add_into(y.as<float>(), z, M * N);
    else if (e.residual) add_into(y.as<float>(), e.residual->as<float>(), M * N);
  }

  void linear_backward(const Tensor& x_saved, const LinearWeights& w, const Epilogue& e, const Tensor& dy,
                       const Tensor* dx, bool accumulate_dx, const Tensor* dW, const Tensor* db,
                       bool first_write) override {
    CpuWeight& cw = cpu_weight(w);
    CLIPKIT_ASSERT(cw.use == WeightUse::Training);
    const int64_t N = w.w.dim(0), K = w.w.dim(1), M = dy.rows();
    float* g = dy.as<float>();
    const bool bf16 = x_saved.dtype() == DType::BF16;  // (its backward takes the activation's in its dy pass)
    if (e.act != Act::None) {
      CLIPKIT_ASSERT(e.preact);
      if (!bf16) act_backward(e.preact->as<float>(), g, g, M * N, e.act);
    }
    float* pdx = dx ? dx->as<float>() : nullptr;
    float* pdW = dW ? dW->as<float>() : nullptr;
    float* pdb = db && w.b.defined() ? db->as<float>() : nullptr;
    if (bf16)
      linear_backward_bf16(x_saved.as<uint16_t>(), bf16_weight(w), g, M, N, K, pdx, pdW, pdb, accumulate_dx,
                           !first_write, e.preact ? e.preact->as<float>() : nullptr, e.act);
    else
      cpu::linear_backward(x_saved.as<float>(), w.w.as<float>(), g, M, N, K, pdx, pdW, pdb, cw.precision,
                           accumulate_dx, !first_write);
  }

  void attention(const Tensor& qkv, const Tensor& out, const AttentionShape& s, bool causal, const Tensor* key_mask,
                 const Dropout& drop, Arena& arena, AttentionSaved* saved) override {
    const int32_t* km = key_mask ? key_mask->as<int32_t>() : nullptr;
    if (!saved) {
      CLIPKIT_ASSERT(!drop.on() && qkv.dtype() == DType::F32);
      return attention_forward(qkv.as<float>(), out.as<float>(), s, causal, km);
    }
    saved->qkv = qkv;
    saved->probs = arena.alloc(DType::F32, {s.B, s.H, s.L, s.L});
    if (qkv.dtype() == DType::F32)
      return attention_forward(qkv.as<float>(), out.as<float>(), s, causal, km, saved->probs.as<float>(), drop);
    saved->probs_operand = arena.alloc(DType::BF16, {s.B, s.H, s.L, s.L});
    attention_forward_bf16(qkv.as<uint16_t>(), out.as<uint16_t>(), s, causal, km, saved->probs.as<float>(),
                           saved->probs_operand.as<uint16_t>(), drop);
  }

  void attention_backward(const Tensor& dout, const AttentionSaved& saved, const Tensor& dqkv,
                          const AttentionShape& s, const Dropout& drop) override {
    if (saved.qkv.dtype() == DType::F32)
      return cpu::attention_backward(dout.as<float>(), saved.qkv.as<float>(), saved.probs.as<float>(),
                                     dqkv.as<float>(), s, drop);
    attention_backward_bf16(dout.as<float>(), saved.qkv.as<uint16_t>(), saved.probs.as<float>(),
                            saved.probs_operand.as<uint16_t>(), dqkv.as<float>(), s, drop);
  }

  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y,
                 const Tensor* stats) override {
    const int64_t M = x.rows();
    float* mean = stats ? stats->as<float>() : nullptr;
    layernorm_forward(x.as<float>(), gamma.as<float>(), beta.as<float>(), y.as<float>(), M, x.cols(), eps, mean,
                      mean ? mean + M : nullptr);
  }

  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& stats,
                          const Tensor* dx, bool accumulate_dx, const Tensor* dgamma, const Tensor* dbeta) override {
    const int64_t M = x.rows(), C = x.cols();
    auto& ws = Workspace::local();
    float* out = dx && !accumulate_dx ? dx->as<float>() : ws.get(kNormDx, static_cast<size_t>(M * C));
    auto grad_or_zeros = [&](const Tensor* t, int slot) {  // the kernel accumulates gamma/beta gradients
      if (t) return t->as<float>();
      float* z = ws.get(slot, static_cast<size_t>(C));
      std::memset(z, 0, sizeof(float) * static_cast<size_t>(C));
      return z;
    };
    float* dg = grad_or_zeros(dgamma, kNormDgamma);
    float* db = grad_or_zeros(dbeta, kNormDbeta);
    const float* mean = stats.as<float>();
    cpu::layernorm_backward(dy.as<float>(), x.as<float>(), gamma.as<float>(), mean, mean + M, out, dg, db, M, C);
    if (dx && accumulate_dx) add_into(dx->as<float>(), out, M * C);
  }

  void dropout(const Tensor& x, const Dropout& d) override {
    if (!d.on()) return;
    ProfileScope prof("dropout");
    const DropoutMask mask(d.p, d.seed, d.site);
    float* p = x.as<float>();
    if (!d.rows)
      return parallel_for(
          x.numel(), [&](int64_t b, int64_t e) { mask.apply(static_cast<uint64_t>(b), e - b, p + b, p + b); }, 1 << 14);
    const int64_t C = x.cols();
    const int32_t* rows = d.rows->as<int32_t>();
    parallel_for(x.rows(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) mask.apply(static_cast<uint64_t>(rows[i]) * C, C, p + i * C, p + i * C);
    }, 16);
  }

  void add(const Tensor& src, const Tensor& dst) override {
    CLIPKIT_ASSERT(src.numel() == dst.numel());
    add_into(dst.as<float>(), src.as<float>(), dst.numel());
  }

  void embedding(const Tensor& table, const Tensor& ids, const Tensor& y, bool accumulate) override {
    embedding_forward(table.as<float>(), ids.as<int32_t>(), ids.numel(), table.cols(), y.as<float>(), accumulate);
  }
  void embedding_backward(const Tensor& dy, const Tensor& ids, const Tensor& dtable, int32_t skip_id) override {
    cpu::embedding_backward(dy.as<float>(), ids.as<int32_t>(), ids.numel(), dtable.cols(), dtable.as<float>(), skip_id);
  }

  void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) override {
    const size_t rb = row_bytes(src);
    const int32_t* ix = idx.as<int32_t>();
    auto* s = static_cast<const char*>(src.data());
    auto* d = static_cast<char*>(dst.data());
    for (int64_t i = 0; i < idx.numel(); ++i) std::memcpy(d + i * rb, s + ix[i] * rb, rb);
  }
  void scatter_rows(const Tensor& src, const Tensor& idx, const Tensor& dst, bool zero_rest) override {
    const size_t rb = row_bytes(dst);
    const int32_t* ix = idx.as<int32_t>();
    auto* s = static_cast<const char*>(src.data());
    auto* d = static_cast<char*>(dst.data());
    if (zero_rest) std::memset(d, 0, dst.nbytes());
    for (int64_t i = 0; i < idx.numel(); ++i) std::memcpy(d + ix[i] * rb, s + i * rb, rb);
  }
  void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) override {
    const int64_t C = dst.cols();
    const int32_t* ix = idx.as<int32_t>();
    const float* s = src.as<float>();
    float* d = dst.as<float>();
    for (int64_t i = 0; i < idx.numel(); ++i)
      for (int64_t c = 0; c < C; ++c) d[ix[i] * C + c] += s[i * C + c];
  }
  void im2col(const Tensor& pixels, const PatchShape& s, const Tensor& cols) override {
    im2col_patches(pixels.as<float>(), s, cols.as<float>());
  }

  ClipLossResult clip_loss(const Tensor& img, const Tensor& txt, const Tensor& logit_scale, const Tensor* dimg,
                           const Tensor* dtxt) override {
    return cpu::clip_loss(img.as<float>(), txt.as<float>(), img.rows(), img.cols(), *logit_scale.as<float>(),
                          dimg ? dimg->as<float>() : nullptr, dtxt ? dtxt->as<float>() : nullptr);
  }
  double grad_norm(const std::vector<Tensor>& grads) override { return cpu::grad_norm(grads); }
  void adamw(const std::vector<OptimizerSlot>& slots, const AdamWStep& s) override { cpu::adamw(slots, s); }
  double matmul_peak_gflops(Precision p) override { return cpu::matmul_peak_gflops(p); }
  std::string precision_note(Precision p) override {
    return p == Precision::F32 ? std::string() : emulation_note(p == Precision::INT8);
  }
};

const BackendRegistrar registrar("cpu", [] { return std::unique_ptr<Backend>(std::make_unique<CpuBackend>()); });

}  // namespace
}  // namespace clipkit::backend::cpu
