#include "ops/matmul_bf16.h"

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "ops/dnnl_context.h"

namespace clipkit::ops {
namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, bool, bool>;

struct Prim {
  dnnl::matmul mm;
  dnnl::memory::desc a, b, c, bias;
};

// The primitive for one shape/layout (handles are reference-counted: a copy outlives a cache clear).
Prim prim_for(const Key& key) {
  static std::mutex mu;
  static std::map<Key, Prim> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() > 512) cache.clear();  // text batches vary in length
  const auto [M, N, K, ta, tb, lda, ldb, ldc, acc, has_bias] = key;
  Prim p;
  p.a = dnnl::memory::desc({M, K}, dt::bf16, ta ? dims{1, lda} : dims{lda, 1});
  p.b = dnnl::memory::desc({K, N}, dt::bf16, tb ? dims{1, ldb} : dims{ldb, 1});
  p.c = dnnl::memory::desc({M, N}, dt::f32, dims{ldc, 1});
  p.bias = dnnl::memory::desc({1, N}, dt::f32, dims{N, 1});
  dnnl::post_ops po;
  if (acc) po.append_sum(1.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  auto& eng = cpu_engine();
  auto d = has_bias ? dnnl::matmul::desc(p.a, p.b, p.bias, p.c) : dnnl::matmul::desc(p.a, p.b, p.c);
  p.mm = dnnl::matmul(dnnl::matmul::primitive_desc(d, attr, eng));
  return cache.emplace(key, p).first->second;
}

}  // namespace

void matmul_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B,
                 int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  CLIPKIT_ASSERT(beta == 0.0f || beta == 1.0f);
  if (M == 0 || N == 0) return;
  CLIPKIT_ASSERT(K > 0);
  const Prim p = prim_for(Key{M, N, K, ta, tb, lda, ldb, ldc, beta != 0.0f, bias != nullptr});
  auto& eng = cpu_engine();
  dnnl::memory am(p.a, eng, const_cast<uint16_t*>(A)), bm(p.b, eng, const_cast<uint16_t*>(B)), cm(p.c, eng, C);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl::memory(p.bias, eng, const_cast<float*>(bias));
  auto& strm = cpu_stream();
  p.mm.execute(strm, args);
  strm.wait();
}

}  // namespace clipkit::ops
