// The compute backend: everything the model and the trainer run on tensors goes through this
// interface, so a device (the oneDNN CPU backend in backend/cpu/, later CUDA) is one more
// implementation of it. docs/design.md states each op's contract; in short:
//   * Tensors are row-major and contiguous; "rows" are all dimensions but the last.
//   * Ops pick their kernel by the dtypes they are given (F32, or BF16 operands of bf16 matmuls);
//     int8 is a kind of prepared inference weight (its activations stay F32 between ops);
//     precision is a property of a prepared weight (prepare_weight) and of the dtype the model
//     asks for matmul operands (operand_dtype), never of model code.
//   * Results overwrite their outputs unless an op says it accumulates; index tensors are I32.
//   * Every op is deterministic: the same inputs give the same bits on any thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/arena.h"
#include "backend/tensor.h"

namespace clipkit::backend {

// Matmul precision. Layer norms, softmax, activations, losses and all accumulation stay fp32.
// INT8 (inference only, CPU): weights quantized per output channel, activations per token.
enum class Precision { F32, BF16, INT8 };
Precision precision_from_name(const std::string& s);  // "fp32" | "bf16" | "int8"; throws Error otherwise
const char* precision_name(Precision p);

// Activations, as fused into a linear layer's epilogue.
//   quick_gelu x*sigmoid(1.702x) (CLIP)   gelu (erf)   gelu_new (tanh approximation)   relu   tanh
enum class Act { None, QuickGelu, Gelu, GeluNew, Relu, Tanh };
bool act_from_name(const std::string& s, Act* out);  // HF hidden_act names
const char* act_name(Act a);

// How a weight is kept on the device: for inference (immutable; the CPU packs it in oneDNN's
// layout, quantized for INT8) or for training (the fp32 master changes every step; bf16 copies are
// remade per version). prepare_weight throws Error for a precision the backend or use lacks
// (INT8 training; INT8 on CUDA).
enum class WeightUse { Inference, Training };
class PreparedWeight {
 public:
  virtual ~PreparedWeight() = default;
};

// A linear layer's parameters: fp32 masters w [N, K] and b [N] (undefined: no bias), the
// backend's prepared form of w, and the version of w and b (the prepared form is remade when it
// changes).
struct LinearWeights {
  const Tensor& w;
  const Tensor& b;
  PreparedWeight& prepared;
  uint64_t version;
};

// y = act(x W^T + b) + residual. `residual` may be y itself (accumulate in place). `preact`
// (training) receives x W^T + b before the activation, for the backward pass.
struct Epilogue {
  Act act = Act::None;
  const Tensor* residual = nullptr;
  const Tensor* preact = nullptr;
};

// Inverted dropout with counter-hash masks (backend/dropout_hash.h), the same bits on every
// backend: element (r, c) of an [R, C] tensor is mask element rows[r] * C + c of stream
// (seed, site), or r * C + c without `rows` (I32 [R]).
struct Dropout {
  float p = 0;
  uint64_t seed = 0, site = 0;
  const Tensor* rows = nullptr;
  bool on() const { return p > 0; }
};

// Multi-head attention over a fused qkv [B*L, 3C] (q | k | v, head h at columns h*D .. h*D+D-1).
struct AttentionShape {
  int64_t B, L, H, D;
  int64_t C() const { return H * D; }
};
// What a training attention forward keeps for its backward (filled by the backend).
struct AttentionSaved {
  Tensor qkv, probs, probs_operand;
};

// ViT patches: pixels [N, CH, S, S] -> cols [N*G*G, CH*P*P] in (c, ky, kx) order, G = S / P.
struct PatchShape {
  int64_t N, CH, S, P;
  int64_t G() const { return S / P; }
  int64_t patches() const { return N * G() * G(); }
  int64_t K() const { return CH * P * P; }
};

// One trainable tensor for the optimizer: master w, gradient g, AdamW moments m, v (all F32).
struct OptimizerSlot {
  Tensor w, g, m, v;
  bool decay = true;
};
// torch.optim.AdamW with g = float(g * grad_scale) (the clip coefficient applied in the same pass):
//   w *= 1 - lr*wd (decay slots); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
struct AdamWStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, grad_scale = 1;
  int64_t t = 1;  // 1-based step count (bias correction)
};

struct ClipLossResult {
  double loss = 0, dlogit_scale = 0;
};

// A pass recorded once and replayed (CUDA graphs; Backend::capture). run() runs the pass's
// function again for its host side (index arrays, results copied out) while the device replays
// the recorded work instead of issuing it op by op.
class CapturedPass {
 public:
  virtual ~CapturedPass() = default;
  // Runs the pass once more. false when the replay did not fit what was recorded (another input
  // buffer or shape, index arrays with other values, device memory reallocated since the capture):
  // the pass then ran directly (its results are right) and the caller drops this object.
  virtual bool run() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // What this backend runs on, for `clipkit --version` and bug reports: "oneDNN 2.6.3, ISA avx2",
  // "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB), CUDA runtime 13.0, driver 13.0".
  virtual std::string description() const = 0;

  // ---- memory ----
  virtual std::shared_ptr<void> allocate(size_t bytes) = 0;  // device memory, 64-byte aligned
  Tensor alloc(DType t, Shape s);                             // an owned tensor (weights, gradients, state)
  Arena& thread_arena();                                      // the calling thread's arena
  virtual void upload(const void* host, const Tensor& dst) = 0;
  // Weights only read from now on, as `host` holds them (F32): a backend that reads host memory
  // views them in place, keeping host.holder (a memory-mapped checkpoint) alive with the view;
  // others copy them into alloc()'d memory. Nothing may write to the result.
  virtual Tensor borrow(const clipkit::Tensor& host, Shape s);
  virtual void download(const Tensor& src, void* host) = 0;
  // Host data a pass reads (inputs, index arrays): host-memory backends read it in place (keep it
  // alive and unchanged while the tensor is used), others copy it into the arena.
  virtual Tensor input(Arena& a, const void* host, DType t, Shape s) = 0;
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;  // same dtype and size
  virtual void zero(const Tensor& t) = 0;
  virtual void synchronize() = 0;  // waits for every op issued so far
  // Host memory for the inputs of passes (staging): page-locked on CUDA, so input()/upload() from
  // it are asynchronous (the buffer must stay unchanged until the pass's first download returns),
  // and a captured pass re-reads it on every replay. Plain host memory on the CPU.
  virtual std::shared_ptr<void> host_buffer(size_t bytes);

  // ---- captured passes ----
  // Runs `pass` (backend ops on this thread, downloads included) once, with its results, and
  // returns it recorded for replay, or null when this device cannot record it (the pass has then
  // run directly). A replay re-reads inputs from host_buffer() memory and checks that every other
  // input holds what it held when recorded. The CPU runs the function directly on every run().
  virtual std::unique_ptr<CapturedPass> capture(std::function<void()> pass);
  // Whether capture() records (false: it runs passes directly, and callers need not stage for it).
  virtual bool records_passes() const { return false; }

  // ---- weights and linear layers ----
  virtual std::unique_ptr<PreparedWeight> prepare_weight(WeightUse use, Precision p) = 0;
  // The dtype of an activation whose only consumers are matmuls, in a pass of this precision
  // (`training`: a pass that saves for backward). Linear and attention outputs of that dtype are
  // written in it directly.
  virtual DType operand_dtype(Precision p, bool training) = 0;
  // y [M, N] from x [M, K] (see Epilogue). x_saved (training weights only): receives x as the
  // backward reads it: bf16(x) when its dtype differs from x's, else it must be x itself.
  virtual void linear(const Tensor& x, const LinearWeights& w, const Epilogue& e, const Tensor& y,
                      const Tensor* x_saved = nullptr) = 0;
  // From dy [M, N] (scratch when e.act is set: it may be overwritten with the pre-activation
  // gradient; e.preact as saved by the forward): dx [M, K] (= or += with accumulate_dx), dW [N, K] and db [N]
  // (= on a first write of the step, else +=). dx, dW, db may be null.
  virtual void linear_backward(const Tensor& x_saved, const LinearWeights& w, const Epilogue& e, const Tensor& dy,
                               const Tensor* dx, bool accumulate_dx, const Tensor* dW, const Tensor* db,
                               bool first_write) = 0;

  // ---- attention, normalization, elementwise ----
  // out [B*L, C] = softmax(q k^T / sqrt(D) + masks) v per head; causal: query i sees keys <= i;
  // key_mask I32 [B, L] (0 = padding key). Masked keys get exactly zero weight. With `saved`
  // (training) the probabilities are kept in the arena and dropout applies to them (element
  // ((b*H + h)*L + i)*L + j of the mask stream). qkv and out are F32, or both of operand_dtype (BF16).
  virtual void attention(const Tensor& qkv, const Tensor& out, const AttentionShape& s, bool causal,
                         const Tensor* key_mask, const Dropout& drop, Arena& arena, AttentionSaved* saved) = 0;
  // dqkv [B*L, 3C] (overwritten) from dout [B*L, C] (F32).
  virtual void attention_backward(const Tensor& dout, const AttentionSaved& saved, const Tensor& dqkv,
                                  const AttentionShape& s, const Dropout& drop) = 0;
  // y [M, C] = (x - mean) * rstd * gamma + beta (y may be x); stats (optional) [2, M]: mean, rstd.
  virtual void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& y,
                         const Tensor* stats) = 0;
  // dx (optional; = or += with accumulate_dx); dgamma, dbeta (optional; accumulated).
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& stats,
                                  const Tensor* dx, bool accumulate_dx, const Tensor* dgamma, const Tensor* dbeta) = 0;
  virtual void dropout(const Tensor& x, const Dropout& d) = 0;  // in place, [R, C]
  virtual void add(const Tensor& src, const Tensor& dst) = 0;   // dst += src

  // ---- gathers and scatters by index (I32) ----
  // y[r] = table[ids[r]] (+= with accumulate); rows with a negative id are left as they are.
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& y, bool accumulate) = 0;
  // dtable[ids[r]] += dy[r] in row order (deterministic); rows whose id is negative or skip_id are skipped.
  virtual void embedding_backward(const Tensor& dy, const Tensor& ids, const Tensor& dtable, int32_t skip_id) = 0;
  virtual void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) = 0;  // dst[i] = src[idx[i]]
  // dst[idx[i]] = src[i]; with zero_rest the other rows of dst become 0. Any dtype.
  virtual void scatter_rows(const Tensor& src, const Tensor& idx, const Tensor& dst, bool zero_rest) = 0;
  virtual void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& dst) = 0;  // dst[idx[i]] += src[i]
  virtual void im2col(const Tensor& pixels, const PatchShape& s, const Tensor& cols) = 0;

  // ---- loss and optimizer ----
  // CLIP's contrastive loss on the unnormalized embeddings img, txt [B, P] and the scalar
  // logit_scale [1]; gradients (optional) overwrite dimg, dtxt. Computed in float64.
  virtual ClipLossResult clip_loss(const Tensor& img, const Tensor& txt, const Tensor& logit_scale,
                                   const Tensor* dimg, const Tensor* dtxt) = 0;
  // sqrt(sum of g^2) over all tensors, accumulated in float64 in a fixed order.
  virtual double grad_norm(const std::vector<Tensor>& grads) = 0;
  virtual void adamw(const std::vector<OptimizerSlot>& slots, const AdamWStep& s) = 0;

  // GFLOP/s of a large matmul in this precision (benchmarks report their fraction of it).
  virtual double matmul_peak_gflops(Precision p) = 0;
  // Empty where this device multiplies in precision p with its own instructions; otherwise one
  // sentence for the user: what runs instead and what it costs (an AVX2-only CPU runs bf16 and
  // int8 products as fp32 matmuls, slower than fp32 itself).
  virtual std::string precision_note(Precision) { return {}; }
};

// Backends register by device name; "cpu" is built when oneDNN is found, "cuda" with CLIPKIT_CUDA.
using BackendFactory = std::unique_ptr<Backend> (*)();
struct BackendRegistrar {
  BackendRegistrar(const char* device, BackendFactory make);
};
// The backend of a device (made on first use); throws Error for an unknown or unbuilt device.
Backend& backend_for(const std::string& device);
std::vector<std::string> built_devices();
// The device ordinal this process's backends open on a machine with several (the launcher's local
// rank under mpirun, set by the CLI before any backend is made; 0 by default). A backend made earlier
// keeps its device.
void set_local_device(int ordinal);
int local_device();
// "auto" resolved: cuda when it is built and a GPU is usable, else cpu when built, else the first
// device built. Any other name is returned as it is.
std::string resolve_device(const std::string& device);

}  // namespace clipkit::backend
