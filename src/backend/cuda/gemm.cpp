#include "backend/cuda/gemm.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <map>

#include "backend/cuda/blas.h"
#include "backend/cuda/check.h"
#include "backend/cuda/convert.h"
#include "backend/cuda/epilogue.h"
#include "core/error.h"

namespace clipkit::cuda {

LtProblem lt_problem(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc) {
  LtProblem p;
  p.trans_a = trans_b;  // cuBLASLt's A is our B (its storage read column-major is B^T)
  p.trans_b = trans_a;
  p.m = N;
  p.n = M;
  p.k = K;
  p.a_rows = trans_b ? K : N;
  p.a_cols = trans_b ? N : K;
  p.lda = ldb;
  p.b_rows = trans_a ? M : K;
  p.b_cols = trans_a ? K : M;
  p.ldb = lda;
  p.c_rows = N;
  p.c_cols = M;
  p.ldc = ldc;
  return p;
}

int pointer_alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int al = 1;
  while (al < 256 && a % (2 * static_cast<uintptr_t>(al)) == 0) al *= 2;
  return al;
}

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    default: fail("cuda gemm: unsupported data type {} (F32 or BF16)", dtype_name(t));
  }
}

bool aligned16(const void* p) { return !p || pointer_alignment(p) >= 16; }

// One cached cuBLASLt problem: its descriptors and the heuristic's algorithm (ok = false: none).
struct LtPlan {
  bool ok = false;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

template <typename T>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v) {
  CLIPKIT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, const Batch& batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  CLIPKIT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch.count > 1) {
    const int32_t count = static_cast<int32_t>(batch.count);
    CLIPKIT_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    CLIPKIT_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return l;
}

}  // namespace

struct Blas::Plans {
  std::map<std::array<int64_t, 24>, LtPlan> plans;
  ~Plans() {
    for (auto& [k, p] : plans) {
      if (p.op) cublasLtMatmulDescDestroy(p.op);
      if (p.a) cublasLtMatrixLayoutDestroy(p.a);
      if (p.b) cublasLtMatrixLayoutDestroy(p.b);
      if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    }
  }
};

Blas::Blas(cudaStream_t s, size_t workspace_bytes) : stream(s), workspace(workspace_bytes), plans(new Plans) {
  CLIPKIT_CUBLAS_CHECK(cublasLtCreate(&lt));
  CLIPKIT_CUBLAS_CHECK(cublasCreate(&handle));
  CLIPKIT_CUBLAS_CHECK(cublasSetStream(handle, s));
  CLIPKIT_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace.data(), workspace.bytes()));
}

Blas::~Blas() {
  plans.reset();
  if (handle) cublasDestroy(handle);
  if (lt) cublasLtDestroy(lt);
}

size_t Blas::cached_plans() const { return plans->plans.size(); }

// D = op(A) op(B) (+ beta D) with cuBLASLt epilogue `epi` (its vector: bias or bias gradient, fp32).
// False when cuBLASLt has no algorithm for the problem (the caller runs the epilogue itself).
bool Blas::matmul(const LtProblem& p, const void* A, const void* B, DType ab, void* D, DType d, float beta,
                  int epi, const void* vec, const Batch& batch) {
  if (!lt_enabled) return false;
  const std::array<int64_t, 24> key = {p.trans_a, p.trans_b, p.m, p.n, p.k, p.lda, p.ldb, p.ldc,
                                       static_cast<int64_t>(ab), static_cast<int64_t>(d), beta != 0, epi,
                                       batch.count, batch.stride_a, batch.stride_b, batch.stride_c,
                                       pointer_alignment(A), pointer_alignment(B), pointer_alignment(D),
                                       0, 0, 0, 0, 0};
  auto it = plans->plans.find(key);
  if (it == plans->plans.end()) {
    LtPlan plan;
    const cudaDataType_t tab = cuda_type(ab), td = cuda_type(d);
    CLIPKIT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_attr(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_attr(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
    set_attr(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<cublasLtEpilogue_t>(epi));
    if (vec) {
      set_attr(plan.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(CUDA_R_32F));
      set_attr(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, vec);
    }
    // (batch strides: our A is cuBLASLt's B)
    plan.a = make_layout(tab, p.a_rows, p.a_cols, p.lda, batch, batch.stride_b);
    plan.b = make_layout(tab, p.b_rows, p.b_cols, p.ldb, batch, batch.stride_a);
    plan.c = make_layout(td, p.c_rows, p.c_cols, p.ldc, batch, batch.stride_c);
    cublasLtMatmulPreference_t pref = nullptr;
    CLIPKIT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = workspace.bytes();
    CLIPKIT_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const uint32_t al_a = pointer_alignment(B), al_b = pointer_alignment(A), al_d = pointer_alignment(D);
    for (auto [attr, v] : {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a},
                           std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b},
                           std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_d},
                           std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_d}})
      CLIPKIT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    plan.status = cublasLtMatmulAlgoGetHeuristic(lt, plan.op, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    plan.ok = plan.status == CUBLAS_STATUS_SUCCESS && found > 0;
    if (plan.ok) plan.algo = result.algo;
    if (!plan.ok && plan.status == CUBLAS_STATUS_SUCCESS) plan.status = CUBLAS_STATUS_NOT_SUPPORTED;
    it = plans->plans.emplace(key, plan).first;
  }
  const LtPlan& plan = it->second;
  if (!plan.ok) return false;
  if (vec) set_attr(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, vec);
  const float alpha = 1.0f;
  // our B is cuBLASLt's A
  CLIPKIT_CUBLAS_CHECK(cublasLtMatmul(lt, plan.op, &alpha, B, plan.a, A, plan.b, &beta, D, plan.c, D, plan.c,
                                      &plan.algo, workspace.data(), workspace.bytes(), stream));
  return true;
}

void Blas::matmul_or_fail(const LtProblem& p, const void* A, const void* B, DType ab, void* D, DType d, float beta,
                          const Batch& batch) {
  if (matmul(p, A, B, ab, D, d, beta, CUBLASLT_EPILOGUE_DEFAULT, nullptr, batch)) return;
  // cuBLAS: the same column-major problem (its A is our B)
  const float alpha = 1.0f;
  const auto i32 = [](int64_t v) {
    if (v > INT32_MAX) fail("cuda gemm: dimension {} too large for cuBLAS", v);
    return static_cast<int>(v);
  };
  CLIPKIT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, i32(p.m), i32(p.n), i32(p.k),
      &alpha, B, cuda_type(ab), i32(p.lda), batch.stride_b, A, cuda_type(ab), i32(p.ldb), batch.stride_a, &beta, D,
      cuda_type(d), i32(p.ldc), batch.stride_c, i32(batch.count), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm(Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda,
          const void* B, int64_t ldb, DType ab, void* C, int64_t ldc, DType c_type, const Epilogue& e,
          const Batch& batch) {
  if ((ab != DType::F32 && ab != DType::BF16) || (c_type != DType::F32 && c_type != DType::BF16))
    fail("cuda gemm: operands must be F32 or BF16 and the output F32 or BF16, got {} and {}", dtype_name(ab),
         dtype_name(c_type));
  if (M < 0 || N < 0 || K < 0 || batch.count < 0) fail("cuda gemm: negative size {} x {} x {}", M, N, K);
  if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || ldc < N || lda < 1 || ldb < 1 || ldc < 1)
    fail("cuda gemm: leading dimensions {} {} {} too small for {} x {} x {} (op {}{})", lda, ldb, ldc, M, N, K,
         trans_a ? "T" : "N", trans_b ? "T" : "N");
  if (e.accumulate && e.activate) fail("cuda gemm: an epilogue cannot both activate and accumulate");
  if (e.preact && !e.activate) fail("cuda gemm: a pre-activation output needs an activation");
  if (e.bias_grad && !trans_a) fail("cuda gemm: the bias gradient epilogue needs op(A) = A^T (dy^T x)");
  if (e.bias_grad && (e.bias || e.activate)) fail("cuda gemm: a bias gradient product takes no bias or activation");
  const bool any_epilogue = e.bias || e.activate || e.bias_grad;
  if (batch.count > 1 && any_epilogue) fail("cuda gemm: batched products take no bias, activation or bias gradient");
  if (M == 0 || N == 0 || batch.count == 0) return;
  if (e.bias_grad && !e.accumulate_bias_grad && K == 0) fill_zero(e.bias_grad, sizeof(float) * M, ctx.stream());
  Blas& blas = ctx.blas();
  if (K == 0) {  // an empty sum: the epilogue of a zero product
    ArenaScope scope(ctx.scratch());
    float* zero = ctx.scratch().alloc<float>(M * N);
    fill_zero(zero, sizeof(float) * M * N, ctx.stream());
    bias_act(zero, N, e.bias, M, N, e.activate, e.act, e.preact, C, ldc, c_type, e.accumulate, ctx);
    return;
  }
  const float beta = e.accumulate ? 1.0f : 0.0f;

  // cuBLASLt's own epilogues: bias, relu, gelu (tanh), the residual (beta = 1), the bias gradient
  // (which it can only overwrite: an accumulated one is summed after the product)
  const bool lt_act = !e.activate || e.act == backend::Act::Relu || e.act == backend::Act::GeluNew;
  const bool lt_bgrad = e.bias_grad && !e.accumulate_bias_grad && aligned16(e.bias_grad);
  if (!ctx.unfused_epilogues && lt_act && !e.preact && aligned16(e.bias)) {
    int epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (lt_bgrad) epi = CUBLASLT_EPILOGUE_BGRADB;
    else if (e.activate) epi = e.act == backend::Act::Relu ? (e.bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                                                       : (e.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU);
    else if (e.bias) epi = CUBLASLT_EPILOGUE_BIAS;
    const LtProblem p = lt_problem(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    bool done = blas.matmul(p, A, B, ab, C, c_type, beta, epi, e.bias ? e.bias : lt_bgrad ? e.bias_grad : nullptr, batch);
    const bool bgrad_done = done && lt_bgrad;
    if (!done && !e.bias && !e.activate) {  // nothing but the residual and a bias gradient: a plain product
      blas.matmul_or_fail(p, A, B, ab, C, c_type, beta, batch);
      done = true;
    }
    if (done) {
      if (e.bias_grad && !bgrad_done) column_sums(A, ab, K, M, lda, e.bias_grad, e.accumulate_bias_grad, ctx);
      return;
    }
  }

  // Otherwise the product (with cuBLASLt's bias when it takes it) into fp32 R, then one elementwise
  // pass for the rest; R is the preact output, C itself (fp32, no residual) or scratch.
  ArenaScope scope(ctx.scratch());
  if (batch.count > 1) {  // plain batched product declined by the fused attempt: nothing to fuse
    blas.matmul_or_fail(lt_problem(trans_a, trans_b, M, N, K, lda, ldb, ldc), A, B, ab, C, c_type, beta, batch);
    return;
  }
  float* R = nullptr;
  int64_t ldr = N;
  if (e.preact) R = e.preact;
  else if (c_type == DType::F32 && !e.accumulate) R = static_cast<float*>(C), ldr = ldc;
  else R = ctx.scratch().alloc<float>(M * N);
  const LtProblem p = lt_problem(trans_a, trans_b, M, N, K, lda, ldb, ldr);
  const float* bias_left = e.bias;
  if (e.bias && !ctx.unfused_epilogues && aligned16(e.bias) &&
      blas.matmul(p, A, B, ab, R, DType::F32, 0.0f, CUBLASLT_EPILOGUE_BIAS, e.bias, batch))
    bias_left = nullptr;
  else
    blas.matmul_or_fail(p, A, B, ab, R, DType::F32, 0.0f, batch);
  if (bias_left || e.activate || e.accumulate || static_cast<void*>(R) != C)
    bias_act(R, ldr, bias_left, M, N, e.activate, e.act, bias_left ? e.preact : nullptr, C, ldc, c_type, e.accumulate,
             ctx);
  if (e.bias_grad) column_sums(A, ab, K, M, lda, e.bias_grad, e.accumulate_bias_grad, ctx);
}

// --- the CPU ops' signatures ---

void gemm(backend::Precision p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Context& ctx) {
  if (beta != 0.0f && beta != 1.0f) fail("cuda gemm: beta must be 0 or 1, got {}", beta);
  Epilogue e;
  e.accumulate = beta != 0.0f;
  if (p == backend::Precision::F32)
    return gemm(ctx, trans_a, trans_b, M, N, K, A, lda, B, ldb, DType::F32, C, ldc, DType::F32, e);
  ArenaScope scope(ctx.scratch());
  const int64_t na = (trans_a ? K : M) * lda, nb = (trans_b ? N : K) * ldb;
  uint16_t* Ab = ctx.scratch().alloc<uint16_t>(na);
  uint16_t* Bb = ctx.scratch().alloc<uint16_t>(nb);
  to_bf16(A, Ab, na, ctx);
  to_bf16(B, Bb, nb, ctx);
  gemm(ctx, trans_a, trans_b, M, N, K, Ab, lda, Bb, ldb, DType::BF16, C, ldc, DType::F32, e);
}

void matmul_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                 const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, Context& ctx) {
  if (beta != 0.0f && beta != 1.0f) fail("cuda matmul_bf16: beta must be 0 or 1, got {}", beta);
  Epilogue e;
  e.bias = bias;
  e.accumulate = beta != 0.0f;
  gemm(ctx, trans_a, trans_b, M, N, K, A, lda, B, ldb, DType::BF16, C, ldc, DType::F32, e);
}

void matmul_bf16_to_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
                         const uint16_t* B, int64_t ldb, uint16_t* C, int64_t ldc, const float* bias, Context& ctx) {
  Epilogue e;
  e.bias = bias;
  gemm(ctx, trans_a, trans_b, M, N, K, A, lda, B, ldb, DType::BF16, C, ldc, DType::BF16, e);
}

void weight_grad_bf16(int64_t M, int64_t N, int64_t K, const uint16_t* dy, const uint16_t* x, float* dW, Context& ctx) {
  gemm(ctx, true, false, N, K, M, dy, N, x, K, DType::BF16, dW, K, DType::F32);
}

namespace {
// dx = dy W; dW (+)= dy^T x; db (+)= column sums of dy: in the dW product's epilogue (fp32), or
// already summed by the caller (bf16: from fp32 dy, as on the CPU)
void dense_backward_any(const void* x, const void* W, const void* dy, DType t, int64_t M, int64_t N, int64_t K,
                        float* dx, float* dW, float* db, bool accumulate_dx, bool accumulate_grads, Context& ctx) {
  if (dx) {
    Epilogue e;
    e.accumulate = accumulate_dx;
    gemm(ctx, false, false, M, K, N, dy, N, W, K, t, dx, K, DType::F32, e);
  }
  if (dW) {
    Epilogue e;
    e.accumulate = accumulate_grads;
    e.bias_grad = db;
    e.accumulate_bias_grad = accumulate_grads;
    gemm(ctx, true, false, N, K, M, dy, N, x, K, t, dW, K, DType::F32, e);
  } else if (db) {
    column_sums(dy, t, M, N, N, db, accumulate_grads, ctx);
  }
}
}  // namespace

void dense_forward(const float* x, const float* W, const float* b, int64_t M, int64_t N, int64_t K, float* y,
                   Context& ctx) {
  Epilogue e;
  e.bias = b;
  gemm(ctx, false, true, M, N, K, x, K, W, K, DType::F32, y, N, DType::F32, e);
}

void dense_backward(const float* x, const float* W, const float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                    float* dW, float* db, bool accumulate_dx, bool accumulate_grads, Context& ctx) {
  dense_backward_any(x, W, dy, DType::F32, M, N, K, dx, dW, db, accumulate_dx, accumulate_grads, ctx);
}

void dense_forward_bf16(const uint16_t* xb, const uint16_t* Wb, const float* b, int64_t M, int64_t N, int64_t K,
                        float* y, Context& ctx) {
  Epilogue e;
  e.bias = b;
  gemm(ctx, false, true, M, N, K, xb, K, Wb, K, DType::BF16, y, N, DType::F32, e);
}

void dense_forward_bf16_out(const uint16_t* xb, const uint16_t* Wb, const float* b, int64_t M, int64_t N, int64_t K,
                            uint16_t* yb, Context& ctx) {
  Epilogue e;
  e.bias = b;
  gemm(ctx, false, true, M, N, K, xb, K, Wb, K, DType::BF16, yb, N, DType::BF16, e);
}

void dense_backward_bf16(const uint16_t* xb, const uint16_t* Wb, const float* dy, int64_t M, int64_t N, int64_t K,
                         float* dx, float* dW, float* db, bool accumulate_dx, bool accumulate_grads, Context& ctx) {
  // dy converted once for both products, with db summed (in fp32) in the same pass
  ArenaScope scope(ctx.scratch());
  uint16_t* dyb = ctx.scratch().alloc<uint16_t>(M * N);
  if (db) column_sums(dy, DType::F32, M, N, N, db, accumulate_grads, ctx, dyb);
  else to_bf16(dy, dyb, M * N, ctx);
  dense_backward_any(xb, Wb, dyb, DType::BF16, M, N, K, dx, dW, nullptr, accumulate_dx, accumulate_grads, ctx);
}

}  // namespace clipkit::cuda
