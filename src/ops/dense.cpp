#include "ops/dense.h"

#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/dnnl_context.h"
#include "ops/linear.h"

namespace clipkit::ops {
namespace {

using dt = dnnl::memory::data_type;

// bf16 scratch for the two operands (grown, reused across calls; training runs one step at a time).
struct Bf16Scratch {
  std::vector<uint16_t> a, b;
};

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, bool>, dnnl::matmul> cache;
  static Bf16Scratch s;
  std::lock_guard<std::mutex> lock(mu);
  // A's storage is (ta ? K x lda : M x lda); B's is (tb ? N x ldb : K x ldb).
  const int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;
  if (static_cast<int64_t>(s.a.size()) < na) s.a.resize(static_cast<size_t>(na));
  if (static_cast<int64_t>(s.b.size()) < nb) s.b.resize(static_cast<size_t>(nb));
  to_bf16(A, s.a.data(), na);
  to_bf16(B, s.b.data(), nb);
  const dnnl::memory::desc a_md({M, K}, dt::bf16, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
  const dnnl::memory::desc b_md({K, N}, dt::bf16, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  const dnnl::memory::desc c_md({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  const bool acc = beta != 0.0f;
  auto key = std::make_tuple(M, N, K, ta, tb, lda, ldb, ldc, acc);
  auto it = cache.find(key);
  auto& eng = cpu_engine();
  if (it == cache.end()) {
    if (cache.size() > 512) cache.clear();
    dnnl::post_ops po;
    if (acc) po.append_sum(1.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, eng);
    it = cache.emplace(key, dnnl::matmul(pd)).first;
  }
  dnnl::memory am(a_md, eng, s.a.data()), bm(b_md, eng, s.b.data()), cm(c_md, eng, C);
  auto& strm = cpu_stream();
  it->second.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  strm.wait();
}

}  // namespace

void gemm(Precision p, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  CLIPKIT_ASSERT(beta == 0.0f || beta == 1.0f);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, sizeof(float) * N);
    return;
  }
  if (p == Precision::BF16) gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void dense_forward(const float* x, const float* W, const float* b, int64_t M, int64_t N, int64_t K, float* y,
                   Precision p) {
  if (b) {
    parallel_for(M, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) std::memcpy(y + r * N, b, sizeof(float) * N);
    }, 64);
  }
  gemm(p, false, true, M, N, K, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

void dense_backward(const float* x, const float* W, const float* dy, int64_t M, int64_t N, int64_t K, float* dx,
                    float* dW, float* db, Precision p, bool accumulate_dx) {
  if (dx) gemm(p, false, false, M, K, N, dy, N, W, K, accumulate_dx ? 1.0f : 0.0f, dx, K);
  if (dW) gemm(p, true, false, N, K, M, dy, N, x, K, 1.0f, dW, K);
  if (db) {
    // column sums, threaded over columns (each thread walks all rows of its column slice)
    parallel_for(N, [&](int64_t cb, int64_t ce) {
      for (int64_t r = 0; r < M; ++r) {
        const float* d = dy + r * N;
        for (int64_t c = cb; c < ce; ++c) db[c] += d[c];
      }
    }, 16);
  }
}

}  // namespace clipkit::ops
