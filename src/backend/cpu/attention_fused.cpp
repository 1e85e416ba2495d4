#include "backend/cpu/attention_fused.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <vector>

#include "core/parallel.h"
#include "backend/cpu/vec_avx512.h"
#include "backend/cpu/workspace.h"

namespace clipkit::backend::cpu {
namespace {

using avx512::exp16;
using avx512::set1;

constexpr int kRows = 4;   // query rows per tile
constexpr int kCols = 4;   // 16-wide column blocks per product tile (16 accumulators with kRows)

// acc[r][c] = sum_k a[r * lda + k] * b[k * ldb + 16 c ..], r < NR, c < NC, k < K; then stored to
// c_out[r * ldc + 16 c ..]. S = Q K^T (a = q rows, b = packed K^T) and O = P V (a = P rows, b = v rows).
template <int NR, int NC>
CLIPKIT_AVX512 void tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t K, float* c_out,
                         int64_t ldc) {
  __m512 acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 bv[NC];
    for (int c = 0; c < NC; ++c) {
      bv[c] = _mm512_loadu_ps(b + k * ldb + 16 * c);
      asm("" : "+v"(bv[c]));  // keep it in a register: one load per k, not one per row (load ports)
    }
    for (int r = 0; r < NR; ++r) {
      const __m512 av = set1(a[r * lda + k]);
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(c_out + r * ldc + 16 * c, acc[r][c]);
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);

template <int NR>
constexpr TileFn tile_for(int nc) {
  return nc == 1 ? tile<NR, 1> : nc == 2 ? tile<NR, 2> : nc == 3 ? tile<NR, 3> : tile<NR, 4>;
}

// The product tile of nr (1..kRows) rows and nc (1..kCols) column blocks.
TileFn tile_fn(int nr, int nc) {
  switch (nr) {
    case 1: return tile_for<1>(nc);
    case 2: return tile_for<2>(nc);
    case 3: return tile_for<3>(nc);
    default: return tile_for<4>(nc);
  }
}

// C [nr, 16 nb] (ldc) = A [nr, K] (lda) B [K, 16 nb] (ldb), kCols blocks at a time.
void product(int nr, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t K, int64_t nb, float* c,
             int64_t ldc) {
  for (int64_t c0 = 0; c0 < nb; c0 += kCols) {
    const int nc = static_cast<int>(std::min<int64_t>(kCols, nb - c0));
    tile_fn(nr, nc)(a, lda, b + 16 * c0, ldb, K, c + 16 * c0, ldc);
  }
}

// The keys of block jb (16 j) that query i sees.
CLIPKIT_AVX512 inline __mmask16 key_mask16(const __mmask16* valid, int64_t jb, bool causal, int64_t i) {
  if (!causal) return valid[jb];
  return static_cast<__mmask16>(valid[jb] & _mm512_cmple_epi32_mask(avx512::lane_indices(16 * jb),
                                                                     _mm512_set1_epi32(static_cast<int>(i))));
}

// One (batch, head): out rows = softmax(q k^T / sqrt(D) + masks) v, with q, k, v rows ld_in apart
// (one page each in qkv). Scratch: qc, kc, vc [L, D] (the head's rows packed), kt [D, Lp] (K^T,
// zero-padded to Lp columns), srows [kRows, Lp]; valid: [Lp / 16] key masks (padding keys and
// j >= L off). next_q: the next head's q (or null), fetched into L2 meanwhile.
CLIPKIT_AVX512 void head(const float* q, const float* k, const float* v, int64_t ld_in, float* o, int64_t ld_out,
                         int64_t L, int64_t D, bool causal, const __mmask16* valid, float* qc, float* kc, float* vc,
                         float* kt, float* srows, const float* next_q) {
  const int64_t Lp = (L + 15) / 16 * 16;
  for (int64_t j = 0; j < L; ++j) {
    for (int64_t d = 0; d < D; d += 16) {
      _mm512_storeu_ps(qc + j * D + d, _mm512_loadu_ps(q + j * ld_in + d));
      _mm512_storeu_ps(kc + j * D + d, _mm512_loadu_ps(k + j * ld_in + d));
      _mm512_storeu_ps(vc + j * D + d, _mm512_loadu_ps(v + j * ld_in + d));
    }
    if (next_q) {  // 3L short rows on as many pages, which the hardware prefetchers don't follow
      for (const float* p : {next_q + j * ld_in, next_q + (k - q) + j * ld_in, next_q + (v - q) + j * ld_in})
        for (int64_t d = 0; d < D; d += 16) _mm_prefetch(reinterpret_cast<const char*>(p + d), _MM_HINT_T1);
    }
  }
  for (int64_t j0 = 0; j0 < Lp; j0 += 16) {  // K^T: 16 keys' d-th values at a time
    const __m512i j = avx512::lane_indices(j0);
    const __mmask16 in = _mm512_cmplt_epi32_mask(j, _mm512_set1_epi32(static_cast<int>(L)));
    const __m512i row = _mm512_mullo_epi32(j, _mm512_set1_epi32(static_cast<int>(D)));
    for (int64_t d = 0; d < D; ++d)
      _mm512_storeu_ps(kt + d * Lp + j0,
                       _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, row, kc + d, sizeof(float)));
  }
  const __m512 scale = set1(1.0f / std::sqrt(static_cast<float>(D)));
  const __m512 neg_inf = set1(-std::numeric_limits<float>::infinity());
  for (int64_t i0 = 0; i0 < L; i0 += kRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kRows, L - i0));
    // causal: rows i0 .. i0 + nr - 1 see keys up to i0 + nr - 1
    const int64_t jn = causal ? i0 + nr : L, jb_end = (jn + 15) / 16;
    product(nr, qc + i0 * D, D, kt, Lp, D, jb_end, srows, Lp);  // S
    for (int r = 0; r < nr; ++r) {  // P = softmax(S * scale) over the row's visible keys
      float* s = srows + r * Lp;
      const int64_t i = i0 + r;
      __m512 mx = neg_inf;
      for (int64_t jb = 0; jb < jb_end; ++jb) {
        const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(s + 16 * jb), scale);
        _mm512_storeu_ps(s + 16 * jb, x);
        mx = _mm512_mask_max_ps(mx, key_mask16(valid, jb, causal, i), mx, x);
      }
      const __m512 m = set1(_mm512_reduce_max_ps(mx));
      __m512 sum = _mm512_setzero_ps();
      for (int64_t jb = 0; jb < jb_end; ++jb) {
        const __m512 e = _mm512_maskz_mov_ps(key_mask16(valid, jb, causal, i), exp16(_mm512_sub_ps(_mm512_loadu_ps(s + 16 * jb), m)));
        _mm512_storeu_ps(s + 16 * jb, e);
        sum = _mm512_add_ps(sum, e);
      }
      const float total = _mm512_reduce_add_ps(sum);
      const __m512 inv = set1(total > 0 ? 1.0f / total : 0.0f);  // a fully masked row gives zeros
      for (int64_t jb = 0; jb < jb_end; ++jb)
        _mm512_storeu_ps(s + 16 * jb, _mm512_mul_ps(_mm512_loadu_ps(s + 16 * jb), inv));
    }
    product(nr, srows, Lp, vc, D, jn, D / 16, o + i0 * ld_out, ld_out);  // O = P V
  }
}

}  // namespace

bool attention_fused_supported(const AttentionShape& s) {
  static const bool onednn = [] {
    const char* e = std::getenv("CLIPKIT_CPU_ATTENTION");
    return e && std::string_view(e) == "onednn";
  }();
  return !onednn && avx512::available() && s.D % 16 == 0 && s.D > 0 && s.L > 0;
}

void attention_forward_fused(const float* qkv, float* out, const AttentionShape& s, bool causal,
                             const int32_t* key_mask) {
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, C = s.C(), C3 = 3 * C;
  const int64_t Lp = (L + 15) / 16 * 16, nb = Lp / 16;
  parallel_for(B * H, [&](int64_t begin, int64_t end) {
    float* qc = Workspace::local().get(kAttnFused, static_cast<size_t>(3 * L * D + (D + kRows) * Lp));
    float* kc = qc + L * D;
    float* vc = kc + L * D;
    float* kt = vc + L * D;
    float* srows = kt + D * Lp;
    std::vector<__mmask16> valid(static_cast<size_t>(nb));
    int64_t mask_b = -1;
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      if (b != mask_b) {  // the keys this sequence's queries may see
        for (int64_t jb = 0; jb < nb; ++jb) {
          __mmask16 m = 0;
          for (int64_t t = 0; t < 16; ++t) {
            const int64_t j = 16 * jb + t;
            if (j < L && (!key_mask || key_mask[b * L + j] != 0)) m = static_cast<__mmask16>(m | (1u << t));
          }
          valid[jb] = m;
        }
        mask_b = b;
      }
      const float* q = qkv + b * L * C3 + h * D;
      const float* next_q = bh + 1 < end ? qkv + (bh + 1) / H * L * C3 + (bh + 1) % H * D : nullptr;
      head(q, q + C, q + 2 * C, C3, out + b * L * C + h * D, C, L, D, causal, valid.data(), qc, kc, vc, kt, srows, next_q);
    }
  }, 1);
}

}  // namespace clipkit::backend::cpu
