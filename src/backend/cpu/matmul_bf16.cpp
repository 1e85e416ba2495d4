#include "backend/cpu/matmul_bf16.h"

#include <cstring>
#include <dnnl.hpp>
#include <tuple>

#include "core/error.h"
#include "backend/cpu/dnnl_context.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/workspace.h"
#include "core/parallel.h"
#include "backend/flop_count.h"

namespace clipkit::backend::cpu {
namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;
// M, N, K, trans_a, trans_b, lda, ldb, ldc, accumulate, bias, bf16 C
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, bool, bool, bool>;

// The matmul for one shape/layout.
Matmul build_prim(const Key& key) {
  const auto [M, N, K, ta, tb, lda, ldb, ldc, acc, has_bias, c_bf16] = key;
  const dnnl::memory::desc a({M, K}, dt::bf16, ta ? dims{1, lda} : dims{lda, 1});
  const dnnl::memory::desc b({K, N}, dt::bf16, tb ? dims{1, ldb} : dims{ldb, 1});
  const dnnl::memory::desc c({M, N}, c_bf16 ? dt::bf16 : dt::f32, dims{ldc, 1});
  dnnl::post_ops po;
  if (acc) po.append_sum(1.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  return Matmul(a, b, c, has_bias ? dnnl::memory::desc({1, N}, dt::f32, dims{N, 1}) : dnnl::memory::desc(), attr);
}

Matmul prim_for(const Key& key) {
  static PrimitiveCache<Key, Matmul> cache(512);
  return cache.get(key, [&] { return build_prim(key); });
}

struct WeightGradPrim {
  dnnl::inner_product_backward_weights ip;
  dnnl::memory::desc x, dy, dw;
};

WeightGradPrim build_weight_grad_prim(int64_t M, int64_t N, int64_t K) {
  using tag = dnnl::memory::format_tag;
  auto& eng = cpu_engine();
  WeightGradPrim p;
  p.x = dnnl::memory::desc({M, K}, dt::bf16, tag::ab);
  p.dy = dnnl::memory::desc({M, N}, dt::bf16, tag::ab);
  p.dw = dnnl::memory::desc({N, K}, dt::f32, tag::ab);
  const dnnl::inner_product_forward::primitive_desc hint(
      dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, p.x,
                                        dnnl::memory::desc({N, K}, dt::bf16, tag::ab), p.dy),
      eng);
  p.ip = dnnl::inner_product_backward_weights(dnnl::inner_product_backward_weights::primitive_desc(
      dnnl::inner_product_backward_weights::desc(p.x, p.dw, p.dy), eng, hint));
  return p;
}

WeightGradPrim weight_grad_prim(int64_t M, int64_t N, int64_t K) {
  static PrimitiveCache<std::tuple<int64_t, int64_t, int64_t>, WeightGradPrim> cache(512);
  return cache.get({M, N, K}, [&] { return build_weight_grad_prim(M, N, K); });
}

}  // namespace

void round_to_bf16(const float* x, uint16_t* bits, float* wide, int64_t n) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    if (bits && wide) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        const uint16_t h = f32_to_bf16_simd(x[i]);
        bits[i] = h;
        wide[i] = bf16_to_f32(h);
      }
    } else if (wide) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) wide[i] = bf16_to_f32(f32_to_bf16_simd(x[i]));
    } else if (bits) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) bits[i] = f32_to_bf16_simd(x[i]);
    }
  }, 1 << 14);
}

Bf16Operand round_operand(const float* x, int64_t n, int slot, uint16_t* keep) {
  auto& ws = Workspace::local();
  if (bf16_matmul_native()) {
    uint16_t* bits = keep ? keep : ws.get_bf16(slot, n);
    round_to_bf16(x, bits, nullptr, n);
    return Bf16Operand(bits);
  }
  float* wide = ws.get(slot, static_cast<size_t>(n));
  round_to_bf16(x, keep, wide, n);
  return Bf16Operand(keep, wide);
}

void weight_grad_bf16(int64_t M, int64_t N, int64_t K, Bf16Operand dy, Bf16Operand x, float* dW) {
  if (N == 0 || K == 0) return;
  CLIPKIT_ASSERT(M > 0);
  // without bf16 kernels there is no bf16 inner product either: dW = dy^T x as a matmul of the
  // widened values (run_widened)
  if (!bf16_matmul_native()) return matmul_bf16(true, false, N, K, M, dy, N, x, K, 0.0f, dW, K);
  CLIPKIT_ASSERT(dy.bits && x.bits);
  const WeightGradPrim p = weight_grad_prim(M, N, K);
  count_flops(2 * M * N * K);
  auto& eng = cpu_engine();
  dnnl::memory xm(p.x, eng, const_cast<uint16_t*>(x.bits)), dym(p.dy, eng, const_cast<uint16_t*>(dy.bits)),
      dwm(p.dw, eng, dW);
  auto& strm = cpu_stream();
  p.ip.execute(strm, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, dwm}});
  strm.wait();
}

namespace {

// The bf16 operand of rows x cols with leading dimension ld in fp32 (same layout): as the caller
// widened it, else widened here into slot.
const float* widened(Bf16Operand x, int64_t rows, int64_t cols, int64_t ld, int slot) {
  if (x.wide) return x.wide;
  CLIPKIT_ASSERT(x.bits);
  const int64_t n = (rows - 1) * ld + cols;
  float* y = Workspace::local().get(slot, static_cast<size_t>(n));
  widen_bf16(x.bits, y, n);
  return y;
}

// Without bf16 kernels (bf16_matmul_native() false): the same product of the bf16 values in fp32,
// through sgemm (oneDNN's jit gemm) on widened copies. On these plain row-major training operands
// it runs 1.3-1.8x faster than a matmul primitive on the same copies (oneDNN picks
// brgemm), the transposed weight-gradient layout most of all (bench train --profile).
void run_widened(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda, Bf16Operand B,
                 int64_t ldb, float beta, void* C, bool c_bf16, int64_t ldc, const float* bias) {
  const float* a = widened(A, ta ? K : M, ta ? M : K, lda, kMatmulSrcF32);
  const float* b = widened(B, tb ? N : K, tb ? K : N, ldb, kMatmulWeightsF32);
  float* c = c_bf16 ? Workspace::local().get(kMatmulDstF32, static_cast<size_t>(M * N)) : static_cast<float*>(C);
  const int64_t ldf = c_bf16 ? N : ldc;
  auto* cb = static_cast<uint16_t*>(C);
  if (c_bf16 && beta != 0.0f)
    parallel_for(M, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) c[r * N + j] = bf16_to_f32(cb[r * ldc + j]);
    }, 16);
  if (bias) {  // C = A B + bias (+ C): the bias goes in first, then the product accumulates onto it
    parallel_for(M, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* row = c + r * ldf;
        if (beta == 0.0f) std::memcpy(row, bias, sizeof(float) * N);
        else
          for (int64_t j = 0; j < N; ++j) row[j] += bias[j];
      }
    }, 16);
    beta = 1.0f;
  }
  sgemm(ta, tb, M, N, K, 1.0f, a, lda, b, ldb, beta, c, ldf);
  if (c_bf16)
    parallel_for(M, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) cb[r * ldc + j] = f32_to_bf16_simd(c[r * N + j]);
    }, 16);
}

void run_matmul(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda, Bf16Operand B,
                int64_t ldb, float beta, void* C, bool c_bf16, int64_t ldc, const float* bias) {
  CLIPKIT_ASSERT(beta == 0.0f || beta == 1.0f);
  if (M == 0 || N == 0) return;
  CLIPKIT_ASSERT(K > 0);
  if (!bf16_matmul_native()) return run_widened(ta, tb, M, N, K, A, lda, B, ldb, beta, C, c_bf16, ldc, bias);  // sgemm counts
  CLIPKIT_ASSERT(A.bits && B.bits);
  count_flops(2 * M * N * K);
  const Matmul m = prim_for(Key{M, N, K, ta, tb, lda, ldb, ldc, beta != 0.0f, bias != nullptr, c_bf16});
  m.execute(A.bits, B.bits, C, bias);
}

}  // namespace

void matmul_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda, Bf16Operand B,
                 int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  run_matmul(ta, tb, M, N, K, A, lda, B, ldb, beta, C, false, ldc, bias);
}

void matmul_bf16_to_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda,
                         Bf16Operand B, int64_t ldb, uint16_t* C, int64_t ldc, const float* bias) {
  run_matmul(ta, tb, M, N, K, A, lda, B, ldb, 0.0f, C, true, ldc, bias);
}

}  // namespace clipkit::backend::cpu
