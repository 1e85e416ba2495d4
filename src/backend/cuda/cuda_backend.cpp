// The CUDA backend: backend.h's ops over device memory, through the kernels of this directory and
// cuBLASLt, all queued on one stream (one cuda::Context), so ops run in the order they are issued
// from any thread (a mutex keeps issuing in order; nothing waits for the device except download,
// synchronize, clip_loss and grad_norm, which return host values).
//   * Weights keep their PyTorch layout; a bf16 weight (bf16 precision, inference or training)
//     keeps bf16(W) on the device, remade once per version.
//   * linear runs the product with cuBLASLt's fused epilogues where it has them (bias, relu,
//     gelu_new, the residual) and one elementwise pass for the rest (cuda/gemm.h).
//   * The arena's blocks and owned tensors are cudaMalloc'd; input() copies host data into the
//     arena (stream-ordered, so the host buffer may change once input() returns).
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/activation.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/capture.h"
#include "backend/cuda/check.h"
#include "backend/cuda/clip_loss.h"
#include "backend/cuda/context.h"
#include "backend/cuda/convert.h"
#include "backend/cuda/dropout.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/epilogue.h"
#include "backend/cuda/fused_attention.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/layernorm.h"
#include "backend/cuda/memory.h"
#include "backend/cuda/optimizer.h"
#include "backend/cuda/patch_embed.h"
#include "backend/cuda/cuda_backend.h"
#include "core/error.h"

namespace clipkit::cuda {
namespace {

using backend::Act;
using backend::Tensor;

struct CudaWeight : backend::PreparedWeight {
  CudaWeight(backend::WeightUse u, backend::Precision p) : use(u), precision(p) {}
  const backend::WeightUse use;
  const backend::Precision precision;
  uint64_t version = ~uint64_t{0};
  DeviceBuffer wb;  // bf16(W) of `version`, for bf16 precision
};

CudaWeight& cuda_weight(const backend::LinearWeights& w) { return static_cast<CudaWeight&>(w.prepared); }
const float* bias_of(const backend::LinearWeights& w) { return w.b.defined() ? w.b.as<float>() : nullptr; }

class CudaBackend;

// A pass recorded as a CUDA graph (capture.h): its function, its log and the instantiated graph.
struct GraphPass final : backend::CapturedPass {
  GraphPass(CudaBackend& b, std::function<void()> f, std::unique_ptr<CaptureLog> l, cudaGraphExec_t e, uint64_t g)
      : be(b), pass(std::move(f)), log(std::move(l)), exec(e), generation(g) {}
  ~GraphPass() override { cudaGraphExecDestroy(exec); }
  bool run() override;
  CudaBackend& be;
  std::function<void()> pass;
  std::unique_ptr<CaptureLog> log;
  cudaGraphExec_t exec;
  uint64_t generation;  // device memory and weights as recorded
};

class CudaBackend final : public backend::Backend {
 public:
  CudaBackend() : ctx_(open_device()) {}

  std::string name() const override { return "cuda"; }
  std::string description() const override {
    const DeviceInfo d = device_info(ctx_.device());
    const auto ver = [](int v) { return fmt::format("{}.{}", v / 1000, v % 1000 / 10); };
    return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB), CUDA runtime {}, driver {}", d.name, d.cc_major, d.cc_minor,
                       d.multiprocessors, static_cast<double>(d.memory_bytes) / (1 << 30), ver(d.runtime_version),
                       ver(d.driver_version));
  }
  const Context& context() const { return ctx_; }

  // ---- memory ----
  std::shared_ptr<void> allocate(size_t bytes) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return std::shared_ptr<void>(detail::device_alloc(bytes ? bytes : 1), detail::device_free);
  }
  void upload(const void* host, const Tensor& dst) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (mode_ == Mode::Replaying) {
      log_->check_input(host, dst.data(), dst.nbytes());
      return log_->advance_input();
    }
    if (mode_ == Mode::Recording)
      host = log_->record_input(host, dst.data(), dst.nbytes(), staging_.contains(host, dst.nbytes()));
    copy_to_device(dst.data(), host, dst.nbytes(), ctx_.stream());
  }
  void download(const Tensor& src, void* host) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (mode_ == Mode::Recording)  // into a page-locked copy; the replays deliver it
      return copy_to_host(log_->record_download(src.data(), src.nbytes()), src.data(), src.nbytes(), ctx_.stream());
    if (mode_ == Mode::Replaying) {
      const void* from = log_->check_download(src.data(), src.nbytes());
      log_->advance_download();
      ctx_.sync();  // the graph is done
      std::memcpy(host, from, src.nbytes());
      return;
    }
    copy_to_host(host, src.data(), src.nbytes(), ctx_.stream());
    ctx_.sync();
  }
  Tensor input(backend::Arena& a, const void* host, DType t, Shape s) override {
    Tensor d = a.alloc(t, std::move(s));
    upload(host, d);
    return d;
  }
  void copy(const Tensor& src, const Tensor& dst) override {
    if (src.nbytes() != dst.nbytes()) fail("cuda copy: {} bytes into {}", src.nbytes(), dst.nbytes());
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    if (!src.same_storage(dst)) copy_on_device(dst.data(), src.data(), src.nbytes(), ctx_.stream());
  }
  void zero(const Tensor& t) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    fill_zero(t.data(), t.nbytes(), ctx_.stream());
  }
  void synchronize() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (mode_ == Mode::Recording) throw ReplayMismatch("synchronize inside a captured pass");
    ctx_.sync();
  }

  // ---- staging and captured passes (capture.h) ----
  std::shared_ptr<void> host_buffer(size_t bytes) override {
    void* p = detail::pinned_alloc(bytes ? bytes : 1);
    staging_.add(p, bytes);
    return std::shared_ptr<void>(p, [this](void* q) {
      staging_.remove(q);
      detail::pinned_free(q);
    });
  }
  std::unique_ptr<backend::CapturedPass> capture(std::function<void()> pass) override;
  bool records_passes() const override { return true; }
  bool replay(GraphPass& g);

  // ---- weights and linear layers ----
  std::unique_ptr<backend::PreparedWeight> prepare_weight(backend::WeightUse use, backend::Precision p) override {
    if (p == backend::Precision::INT8) fail("int8 precision runs on the CPU (--device cpu); use fp32 or bf16 on CUDA");
    return std::make_unique<CudaWeight>(use, p);
  }
  // bf16 passes keep matmul-only activations in bf16, in inference too (unlike the CPU): the
  // fused attention reads and writes bf16, and the products read them without a conversion.
  DType operand_dtype(backend::Precision p, bool) override {
    return p == backend::Precision::BF16 ? DType::BF16 : DType::F32;
  }

  void linear(const Tensor& x, const backend::LinearWeights& w, const backend::Epilogue& e, const Tensor& y,
              const Tensor* x_saved) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    CudaWeight& cw = cuda_weight(w);
    const int64_t N = w.w.dim(0), K = w.w.dim(1), M = x.rows();
    if (x.cols() != K || y.rows() != M || y.cols() != N)
      fail("cuda linear: x [{}, {}] and y [{}, {}] do not fit W [{}, {}]", M, x.cols(), y.rows(), y.cols(), N, K);
    ArenaScope scope(ctx_.scratch());
    const bool bf16 = cw.precision == backend::Precision::BF16;
    const void* xa = x.data();
    if (bf16 && x.dtype() != DType::BF16) {  // bf16(x): what the backward reads
      if (x_saved && x_saved->dtype() != DType::BF16) fail("cuda linear: a bf16 layer saves its input in bf16");
      uint16_t* xb = x_saved ? x_saved->as<uint16_t>() : ctx_.scratch().alloc<uint16_t>(M * K);
      to_bf16(x.as<float>(), xb, M * K, ctx_);
      xa = xb;
    } else if (!bf16 && x.dtype() != DType::F32) {
      fail("cuda linear: an fp32 layer takes F32 input, got {}", dtype_name(x.dtype()));
    }
    const void* W = bf16 ? static_cast<const void*>(bf16_weight(w)) : w.w.data();
    const DType ab = bf16 ? DType::BF16 : DType::F32;
    Epilogue ge;
    ge.bias = bias_of(w);
    ge.activate = e.act != Act::None || e.preact;
    ge.act = e.act;
    ge.preact = e.preact ? e.preact->as<float>() : nullptr;
    if (!e.residual) return gemm(ctx_, false, true, M, N, K, xa, K, W, K, ab, y.data(), N, y.dtype(), ge);
    if (y.dtype() != DType::F32) fail("cuda linear: a residual is added in F32");
    if (!e.residual->same_storage(y)) copy(*e.residual, y);
    if (!ge.activate) {  // the residual add fused (beta = 1)
      ge.accumulate = true;
      return gemm(ctx_, false, true, M, N, K, xa, K, W, K, ab, y.data(), N, DType::F32, ge);
    }
    float* z = ctx_.scratch().alloc<float>(M * N);
    gemm(ctx_, false, true, M, N, K, xa, K, W, K, ab, z, N, DType::F32, ge);
    add_rows(z, y.as<float>(), M, N);
  }

  void linear_backward(const Tensor& x_saved, const backend::LinearWeights& w, const backend::Epilogue& e,
                       const Tensor& dy, const Tensor* dx, bool accumulate_dx, const Tensor* dW, const Tensor* db,
                       bool first_write) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    CudaWeight& cw = cuda_weight(w);
    if (cw.use != backend::WeightUse::Training) fail("cuda linear_backward: the weight was prepared for inference");
    const int64_t N = w.w.dim(0), K = w.w.dim(1), M = dy.rows();
    float* g = dy.as<float>();
    if (e.act != Act::None) {
      if (!e.preact) fail("cuda linear_backward: an activation's backward needs the saved pre-activation");
      act_backward(e.preact->as<float>(), g, g, M * N, e.act, ctx_);
    }
    float* pdx = dx ? dx->as<float>() : nullptr;
    float* pdW = dW ? dW->as<float>() : nullptr;
    float* pdb = db && w.b.defined() ? db->as<float>() : nullptr;
    if (cw.precision == backend::Precision::F32)
      return dense_backward(x_saved.as<float>(), w.w.as<float>(), g, M, N, K, pdx, pdW, pdb, accumulate_dx,
                            !first_write, ctx_);
    ArenaScope scope(ctx_.scratch());
    const uint16_t* xb = x_saved.as<uint16_t>();
    if (x_saved.dtype() != DType::BF16) {
      uint16_t* t = ctx_.scratch().alloc<uint16_t>(M * K);
      to_bf16(x_saved.as<float>(), t, M * K, ctx_);
      xb = t;
    }
    dense_backward_bf16(xb, bf16_weight(w), g, M, N, K, pdx, pdW, pdb, accumulate_dx, !first_write, ctx_);
  }

  // ---- attention, normalization, elementwise ----
  void attention(const Tensor& qkv, const Tensor& out, const backend::AttentionShape& s, bool causal,
                 const Tensor* key_mask, const backend::Dropout& drop, backend::Arena& arena,
                 backend::AttentionSaved* saved) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    const int32_t* km = key_mask ? key_mask->as<int32_t>() : nullptr;
    if (qkv.dtype() != out.dtype()) fail("cuda attention: qkv and out must have one dtype");
    const bool bf16 = qkv.dtype() == DType::BF16;
    if (!saved) {
      if (drop.on()) fail("cuda attention: dropout needs the saved probabilities (training)");
      if (bf16 && fused_attention_fits(s, qkv.data(), out.data()))
        return fused_attention_forward(qkv.as<uint16_t>(), out.as<uint16_t>(), s, causal, km, ctx_);
      if (bf16)
        return attention_forward_bf16(qkv.as<uint16_t>(), out.as<uint16_t>(), s, causal, km, nullptr, nullptr, {},
                                      ctx_);
      return attention_forward(qkv.as<float>(), out.as<float>(), s, causal, km, nullptr, {}, ctx_);
    }
    saved->qkv = qkv;
    saved->probs = arena.alloc(DType::F32, {s.B, s.H, s.L, s.L});
    if (!bf16)
      return attention_forward(qkv.as<float>(), out.as<float>(), s, causal, km, saved->probs.as<float>(), drop, ctx_);
    saved->probs_operand = arena.alloc(DType::BF16, {s.B, s.H, s.L, s.L});
    attention_forward_bf16(qkv.as<uint16_t>(), out.as<uint16_t>(), s, causal, km, saved->probs.as<float>(),
                           saved->probs_operand.as<uint16_t>(), drop, ctx_);
  }

  void attention_backward(const Tensor& dout, const backend::AttentionSaved& saved, const Tensor& dqkv,
                          const backend::AttentionShape& s, const backend::Dropout& drop) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    if (saved.qkv.dtype() == DType::F32)
      return cuda::attention_backward(dout.as<float>(), saved.qkv.as<float>(), saved.probs.as<float>(),
                                      dqkv.as<float>(), s, drop, ctx_);
    attention_backward_bf16(dout.as<float>(), saved.qkv.as<uint16_t>(), saved.probs.as<float>(),
                            saved.probs_operand.as<uint16_t>(), dqkv.as<float>(), s, drop, ctx_);
  }

  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y,
                 const Tensor* stats) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    const int64_t M = x.rows();
    float* mean = stats ? stats->as<float>() : nullptr;
    layernorm_forward(x.as<float>(), gamma.as<float>(), beta.as<float>(), y.as<float>(), M, x.cols(), eps, mean,
                      mean ? mean + M : nullptr, ctx_);
  }

  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& stats,
                          const Tensor* dx, bool accumulate_dx, const Tensor* dgamma, const Tensor* dbeta) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    const int64_t M = x.rows(), C = x.cols();
    ArenaScope scope(ctx_.scratch());
    DeviceArena& ws = ctx_.scratch();
    float* out = dx && !accumulate_dx ? dx->as<float>() : ws.alloc<float>(M * C);
    auto grad_or_zeros = [&](const Tensor* t) {  // the kernel accumulates gamma/beta gradients
      if (t) return t->as<float>();
      float* z = ws.alloc<float>(C);
      fill_zero(z, sizeof(float) * static_cast<size_t>(C), ctx_.stream());
      return z;
    };
    float* dg = grad_or_zeros(dgamma);
    float* db = grad_or_zeros(dbeta);
    const float* mean = stats.as<float>();
    cuda::layernorm_backward(dy.as<float>(), x.as<float>(), gamma.as<float>(), mean, mean + M, out, dg, db, M, C,
                             ctx_);
    if (dx && accumulate_dx) add_rows(out, dx->as<float>(), M, C);
  }

  void dropout(const Tensor& x, const backend::Dropout& d) override {
    if (!d.on()) return;
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    if (d.rows && d.rows->numel() != x.rows()) fail("cuda dropout: {} row ids for {} rows", d.rows->numel(), x.rows());
    dropout_apply(x.as<float>(), x.as<float>(), x.rows(), x.cols(), d.rows ? d.rows->as<int32_t>() : nullptr, d.p,
                  d.seed, d.site, ctx_);
  }

  void add(const Tensor& src, const Tensor& dst) override {
    if (src.numel() != dst.numel()) fail("cuda add: {} elements into {}", src.numel(), dst.numel());
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    add_rows(src.as<float>(), dst.as<float>(), dst.rows(), dst.cols());
  }

  // ---- gathers and scatters by index ----
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& y, bool accumulate) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    embedding_forward(table.as<float>(), table.rows(), ids.as<int32_t>(), ids.numel(), table.cols(), y.as<float>(),
                      accumulate, ctx_);
  }
  void embedding_backward(const Tensor& dy, const Tensor& ids, const Tensor& dtable, int32_t skip_id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    cuda::embedding_backward(dy.as<float>(), ids.as<int32_t>(), ids.numel(), dtable.cols(), dtable.as<float>(),
                             dtable.rows(), skip_id, ctx_);
  }
  void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    cuda::gather_rows(src.data(), idx.as<int32_t>(), idx.numel(), src.cols(), dtype_size(src.dtype()), dst.data(),
                      ctx_);
  }
  void scatter_rows(const Tensor& src, const Tensor& idx, const Tensor& dst, bool zero_rest) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    cuda::scatter_rows(src.data(), idx.as<int32_t>(), idx.numel(), dst.rows(), dst.cols(), dtype_size(dst.dtype()),
                       dst.data(), zero_rest, ctx_);
  }
  void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);  // in row order, deterministically: embedding's backward
    if (replaying()) return;
    cuda::embedding_backward(src.as<float>(), idx.as<int32_t>(), idx.numel(), dst.cols(), dst.as<float>(), dst.rows(),
                             -1, ctx_);
  }
  void im2col(const Tensor& pixels, const backend::PatchShape& s, const Tensor& cols) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (replaying()) return;
    if (replaying()) return;
    im2col_patches(pixels.as<float>(), s, cols.as<float>(), ctx_);
  }

  // ---- loss and optimizer ----
  backend::ClipLossResult clip_loss(const Tensor& img, const Tensor& txt, const Tensor& logit_scale,
                                    const Tensor* dimg, const Tensor* dtxt) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    direct_only("clip_loss");
    ArenaScope scope(ctx_.scratch());
    double* result = ctx_.scratch().alloc<double>(2);
    cuda::clip_loss(img.as<float>(), txt.as<float>(), img.rows(), img.cols(), logit_scale.as<float>(),
                    dimg ? dimg->as<float>() : nullptr, dtxt ? dtxt->as<float>() : nullptr, result, ctx_);
    return read_clip_loss(result, ctx_);
  }
  double grad_norm(const std::vector<Tensor>& grads) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    direct_only("grad_norm");
    ArenaScope scope(ctx_.scratch());
    double* total = ctx_.scratch().alloc<double>(1);
    cuda::grad_norm(grads, total, ctx_);
    double h = 0;
    copy_to_host(&h, total, sizeof h, ctx_.stream());
    ctx_.sync();
    return h;
  }
  void adamw(const std::vector<backend::OptimizerSlot>& slots, const backend::AdamWStep& s) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    direct_only("adamw");
    ++weights_generation_;  // the weights change: graphs that read them are recorded again
    cuda::adamw(slots, s, ctx_);
  }

  double matmul_peak_gflops(backend::Precision p) override;

 private:
  static int open_device() {
    const int n = device_count();
    if (n == 0) fail("--device cuda: no usable CUDA device ({})", no_device_reason());
    return backend::local_device() % n;  // a rank per GPU under mpirun (dist/nccl_comm.h checks there are enough)
  }
  // bf16(W) of the current version
  const uint16_t* bf16_weight(const backend::LinearWeights& w) {
    CudaWeight& cw = cuda_weight(w);
    if (cw.version != w.version || !cw.wb.data()) {
      if (cw.wb.bytes() != sizeof(uint16_t) * static_cast<size_t>(w.w.numel()))
        cw.wb = DeviceBuffer(sizeof(uint16_t) * static_cast<size_t>(w.w.numel()));
      to_bf16(w.w.as<float>(), cw.wb.as<uint16_t>(), w.w.numel(), ctx_);
      cw.version = w.version;
    }
    return cw.wb.as<uint16_t>();
  }
  // dst [M, N] += src [M, N] (F32)
  void add_rows(const float* src, float* dst, int64_t M, int64_t N) {
    bias_act(src, N, nullptr, M, N, false, Act::None, nullptr, dst, N, DType::F32, true, ctx_);
  }

  enum class Mode { Direct, Recording, Replaying };
  // Replaying: the graph does the device work; ops return at once, host traffic is checked.
  bool replaying() const { return mode_ == Mode::Replaying; }
  void direct_only(const char* op) const {
    if (mode_ != Mode::Direct) throw ReplayMismatch(std::string(op) + " inside a captured pass");
  }
  uint64_t generation() const { return device_memory_generation() + weights_generation_; }

  std::recursive_mutex mu_;
  Context ctx_;
  Mode mode_ = Mode::Direct;
  CaptureLog* log_ = nullptr;
  HostRanges staging_;
  uint64_t weights_generation_ = 0;
  double peak_[2] = {0, 0};
};

// A 4096^3 product, timed with CUDA events over 20 runs after a warm-up; measured once per precision.
double CudaBackend::matmul_peak_gflops(backend::Precision p) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  double& peak = peak_[p == backend::Precision::BF16 ? 1 : 0];
  if (peak > 0) return peak;
  constexpr int64_t n = 4096;
  constexpr int runs = 20;
  const DType t = p == backend::Precision::BF16 ? DType::BF16 : DType::F32;
  const size_t bytes = static_cast<size_t>(n * n) * dtype_size(t);
  DeviceBuffer a(bytes), b(bytes), c(static_cast<size_t>(n * n) * sizeof(float));
  fill_zero(a.data(), bytes, ctx_.stream());
  fill_zero(b.data(), bytes, ctx_.stream());
  auto run = [&] { gemm(ctx_, false, true, n, n, n, a.data(), n, b.data(), n, t, c.data(), n, DType::F32); };
  run();
  cudaEvent_t start = nullptr, stop = nullptr;
  CLIPKIT_CUDA_CHECK(cudaEventCreate(&start));
  CLIPKIT_CUDA_CHECK(cudaEventCreate(&stop));
  CLIPKIT_CUDA_CHECK(cudaEventRecord(start, ctx_.stream()));
  for (int i = 0; i < runs; ++i) run();
  CLIPKIT_CUDA_CHECK(cudaEventRecord(stop, ctx_.stream()));
  CLIPKIT_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CLIPKIT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  peak = 2.0 * n * n * n * runs / (static_cast<double>(ms) * 1e-3) / 1e9;
  return peak;
}

// Records the pass on the stream (relaxed mode: an arena that grows during the pass cudaMallocs,
// which invalidates the recording through the generation instead of failing the capture), then
// replays it once for its results. Anything that goes wrong while recording -- an op that waits,
// a launch the graph cannot hold -- drops the recording and the pass runs directly (an error of
// the pass itself is raised there).
std::unique_ptr<backend::CapturedPass> CudaBackend::capture(std::function<void()> pass) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (mode_ != Mode::Direct) {  // nested: not recorded on its own
    pass();
    return nullptr;
  }
  auto log = std::make_unique<CaptureLog>(CaptureLog::Allocator{detail::pinned_alloc, detail::pinned_free});
  const uint64_t gen = generation();
  CLIPKIT_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream(), cudaStreamCaptureModeRelaxed));
  mode_ = Mode::Recording;
  log_ = log.get();
  bool ok = true;
  try {
    pass();
  } catch (...) {
    ok = false;
  }
  mode_ = Mode::Direct;
  log_ = nullptr;
  cudaGraph_t graph = nullptr;
  ok = cudaStreamEndCapture(ctx_.stream(), &graph) == cudaSuccess && ok && generation() == gen;
  cudaGraphExec_t exec = nullptr;
  if (ok && cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) exec = nullptr;
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();  // a failed capture's error is not the next op's
  if (!exec) {
    pass();
    return nullptr;
  }
  auto g = std::make_unique<GraphPass>(*this, std::move(pass), std::move(log), exec, gen);
  if (!g->run()) return nullptr;
  return g;
}

bool CudaBackend::replay(GraphPass& g) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  bool fits = mode_ == Mode::Direct && generation() == g.generation;
  if (fits) {
    CLIPKIT_CUDA_CHECK(cudaGraphLaunch(g.exec, ctx_.stream()));
    mode_ = Mode::Replaying;
    log_ = g.log.get();
    log_->begin_replay();
    try {
      g.pass();
      log_->end_replay();
    } catch (const ReplayMismatch&) {
      fits = false;
    } catch (...) {
      mode_ = Mode::Direct;
      log_ = nullptr;
      throw;
    }
    mode_ = Mode::Direct;
    log_ = nullptr;
    ctx_.sync();
  }
  if (!fits) g.pass();  // the graph's results (if it ran) are overwritten: stream order
  return fits;
}

bool GraphPass::run() { return be.replay(*this); }

const backend::BackendRegistrar registrar("cuda", [] {
  return std::unique_ptr<backend::Backend>(std::make_unique<CudaBackend>());
});

const CudaBackend& the_backend() { return static_cast<const CudaBackend&>(backend::backend_for("cuda")); }

}  // namespace

cudaStream_t backend_stream() { return the_backend().context().stream(); }
int backend_device() { return the_backend().context().device(); }

}  // namespace clipkit::cuda
