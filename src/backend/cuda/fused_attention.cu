#include "backend/cuda/fused_attention.h"

#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <mutex>
#include <string>

#include "backend/cuda/device_util.cuh"

namespace clipkit::cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kWarps = 4, kThreads = 32 * kWarps;  // queries, keys per tile; 16 queries a warp

// Shared memory of one CTA (leading dimensions padded against bank conflicts; every region and
// every 16-row fragment starts 32-byte aligned, as WMMA requires).
template <int D>
struct Layout {
  static constexpr int ldk = D + 8;    // bf16 Q, K, V tiles [64][ldk]
  static constexpr int lds = kBN + 4;  // fp32 S, per warp [16][lds]
  static constexpr int ldp = kBN + 8;  // bf16 P, per warp [16][ldp]
  static constexpr int ldo = D + 4;    // fp32 context, per warp [16][ldo]
  static constexpr size_t tile = size_t{kBM} * ldk * 2;
  static constexpr size_t s_off = 3 * tile, p_off = s_off + size_t{kWarps} * 16 * lds * 4,
                          o_off = p_off + size_t{kWarps} * 16 * ldp * 2, bytes = o_off + size_t{kWarps} * 16 * ldo * 4;
};

// rows [r0, r0 + 64) of one slot (q, k or v: column offset col) of head h into a [64][ldk] tile; rows past L are zeros
template <int D>
__device__ void load_tile(const uint16_t* base, int64_t row_stride, int r0, int L, uint16_t* tile) {
  constexpr int vec = D / 8;  // 16-byte vectors per row
  for (int i = threadIdx.x; i < kBM * vec; i += kThreads) {
    const int r = i / vec, c = (i % vec) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < L) v = *reinterpret_cast<const uint4*>(base + static_cast<int64_t>(r0 + r) * row_stride + c);
    *reinterpret_cast<uint4*>(tile + r * Layout<D>::ldk + c) = v;
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) fused_attention_kernel(const uint16_t* qkv, uint16_t* out, int L, int H,
                                                                   int qtiles, float scale_log2, bool causal,
                                                                   const int32_t* key_mask) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using Lay = Layout<D>;
  using bf16 = __nv_bfloat16;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int qt = blockIdx.x % qtiles, h = (blockIdx.x / qtiles) % H;
  const int64_t b = blockIdx.x / (static_cast<int64_t>(qtiles) * H);
  const int q0 = qt * kBM;
  const int64_t C = static_cast<int64_t>(H) * D, stride = 3 * C;
  const uint16_t* base = qkv + b * L * stride + h * D;
  uint16_t* sq = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sk = reinterpret_cast<uint16_t*>(smem + Lay::tile);
  uint16_t* sv = reinterpret_cast<uint16_t*>(smem + 2 * Lay::tile);
  float* ss = reinterpret_cast<float*>(smem + Lay::s_off) + warp * 16 * Lay::lds;
  uint16_t* sp = reinterpret_cast<uint16_t*>(smem + Lay::p_off) + warp * 16 * Lay::ldp;
  float* so = reinterpret_cast<float*>(smem + Lay::o_off) + warp * 16 * Lay::ldo;

  load_tile<D>(base, stride, q0, L, sq);
  for (int i = lane; i < 16 * Lay::ldo; i += 32) so[i] = 0.0f;
  // the softmax state of row r = lane / 2 of this warp, kept by both lanes of the pair (each does half the columns)
  const int r = lane >> 1, half = lane & 1;
  const int qi = q0 + warp * 16 + r;
  const int32_t* km = key_mask ? key_mask + b * L : nullptr;
  float m = -INFINITY, l = 0.0f;
  const int kend = causal ? min(L, q0 + kBM) : L;  // the keys any query of this CTA sees
  for (int k0 = 0; k0 < kend; k0 += kBN) {
    __syncthreads();  // every warp is done with the previous K/V tiles (and the Q tile is written)
    load_tile<D>(base + C, stride, k0, L, sk);
    load_tile<D>(base + 2 * C, stride, k0, L, sv);
    __syncthreads();
    // S [16, 64] = Q K^T for this warp's queries
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kBN / 16];
#pragma unroll
    for (int n = 0; n < kBN / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
    for (int kk = 0; kk < D; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
      wmma::load_matrix_sync(a, reinterpret_cast<const bf16*>(sq + warp * 16 * Lay::ldk + kk), Lay::ldk);
#pragma unroll
      for (int n = 0; n < kBN / 16; ++n) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kt;
        wmma::load_matrix_sync(kt, reinterpret_cast<const bf16*>(sk + n * 16 * Lay::ldk + kk), Lay::ldk);
        wmma::mma_sync(acc[n], a, kt, acc[n]);
      }
    }
#pragma unroll
    for (int n = 0; n < kBN / 16; ++n) wmma::store_matrix_sync(ss + n * 16, acc[n], Lay::lds, wmma::mem_row_major);
    __syncwarp();
    // online softmax over this tile's 32 columns of the lane's row
    float s[kBN / 2];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kBN / 2; ++j) {
      const int c = half * (kBN / 2) + j, key = k0 + c;
      const bool seen = key < L && (!causal || key <= qi) && (!km || km[key] != 0);
      s[j] = seen ? ss[r * Lay::lds + c] * scale_log2 : -INFINITY;
      mx = fmaxf(mx, s[j]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);  // m = -inf: the context is still zero
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kBN / 2; ++j) {
      const uint16_t pb = f32_to_bf16(s[j] == -INFINITY ? 0.0f : exp2f(s[j] - m_new));
      sp[r * Lay::ldp + half * (kBN / 2) + j] = pb;
      sum += bf16_to_f32(pb);  // the weights the product uses
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) so[r * Lay::ldo + d] *= alpha;
    __syncwarp();
    // context [16, D] += P V
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
      wmma::load_matrix_sync(o, so + n * 16, Lay::ldo, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kBN; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> p;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> v;
        wmma::load_matrix_sync(p, reinterpret_cast<const bf16*>(sp + kk), Lay::ldp);
        wmma::load_matrix_sync(v, reinterpret_cast<const bf16*>(sv + kk * Lay::ldk + n * 16), Lay::ldk);
        wmma::mma_sync(o, p, v, o);
      }
      wmma::store_matrix_sync(so + n * 16, o, Lay::ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (qi < L) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a fully masked row: zeros
    uint16_t* o = out + (b * L + qi) * C + h * D;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) o[d] = f32_to_bf16(so[r * Lay::ldo + d] * inv);
  }
#endif
}

template <int D>
void launch(const uint16_t* qkv, uint16_t* out, const backend::AttentionShape& s, bool causal, const int32_t* km,
            Context& ctx) {
  constexpr size_t bytes = Layout<D>::bytes;
  static std::once_flag once;  // before any launch (and outside any graph capture): the shared memory opt-in
  std::call_once(once, [] {
    CLIPKIT_CUDA_CHECK(cudaFuncSetAttribute(fused_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
  });
  const int qtiles = static_cast<int>((s.L + kBM - 1) / kBM);
  const int64_t blocks = s.B * s.H * qtiles;
  const float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(D)));
  fused_attention_kernel<D><<<static_cast<unsigned>(blocks), kThreads, bytes, ctx.stream()>>>(
      qkv, out, static_cast<int>(s.L), static_cast<int>(s.H), qtiles, scale_log2, causal, km);
  CLIPKIT_LAUNCH_CHECK(fused_attention_kernel);
}

}  // namespace

size_t fused_attention_smem_bytes(int64_t D) {
  switch (D) {
    case 16: return Layout<16>::bytes;
    case 32: return Layout<32>::bytes;
    case 48: return Layout<48>::bytes;
    case 64: return Layout<64>::bytes;
    case 80: return Layout<80>::bytes;
    case 96: return Layout<96>::bytes;
    case 112: return Layout<112>::bytes;
    case 128: return Layout<128>::bytes;
    default: return 0;
  }
}

bool fused_attention_fits(const backend::AttentionShape& s, const void* qkv_b, const void* out_b) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const int64_t qtiles = (s.L + kBM - 1) / kBM;
  return s.B >= 1 && s.L >= 1 && s.H >= 1 && fused_attention_smem_bytes(s.D) > 0 && s.L <= INT32_MAX &&
         s.B * s.H * qtiles <= INT32_MAX && aligned(qkv_b) && aligned(out_b);
}

void fused_attention_forward(const uint16_t* qkv_b, uint16_t* out_b, const backend::AttentionShape& s, bool causal,
                             const int32_t* key_mask, Context& ctx) {
  if (!fused_attention_fits(s, qkv_b, out_b))
    fail_msg("cuda fused attention: B " + std::to_string(s.B) + " L " + std::to_string(s.L) + " H " +
             std::to_string(s.H) + " D " + std::to_string(s.D) +
             " is not taken (D a multiple of 16 up to 128, 16-byte aligned tensors)");
  switch (s.D) {
    case 16: return launch<16>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 32: return launch<32>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 48: return launch<48>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 64: return launch<64>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 80: return launch<80>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 96: return launch<96>(qkv_b, out_b, s, causal, key_mask, ctx);
    case 112: return launch<112>(qkv_b, out_b, s, causal, key_mask, ctx);
    default: return launch<128>(qkv_b, out_b, s, causal, key_mask, ctx);
  }
}

}  // namespace clipkit::cuda
