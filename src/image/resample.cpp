// Bit-exact reproduction of Pillow 9.4's ImagingResample for 8-bit RGB images. The coefficient
// math must be plain IEEE double with no FMA contraction, like Pillow's C build.
#pragma GCC optimize("fp-contract=off")
#include "image/resample.h"

#include <algorithm>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace clipkit::image {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double filter_value(Resample f, double x) {
  switch (f) {
    case Resample::Box: return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
    case Resample::Bilinear:
      if (x < 0.0) x = -x;
      return x < 1.0 ? 1.0 - x : 0.0;
    case Resample::Hamming:
      if (x < 0.0) x = -x;
      if (x == 0.0) return 1.0;
      if (x >= 1.0) return 0.0;
      x = x * M_PI;
      return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
    case Resample::Bicubic: {
      constexpr double a = -0.5;
      if (x < 0.0) x = -x;
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    }
    case Resample::Lanczos: {
      auto sinc = [](double v) {
        if (v == 0.0) return 1.0;
        v = v * M_PI;
        return std::sin(v) / v;
      };
      return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
    }
    default: return 0.0;
  }
}

double filter_support(Resample f) {
  switch (f) {
    case Resample::Box: return 0.5;
    case Resample::Bilinear: case Resample::Hamming: return 1.0;
    case Resample::Bicubic: return 2.0;
    case Resample::Lanczos: return 3.0;
    default: return 0.0;
  }
}

// Fixed-point taps for output positions [o0, o1) of a 1-D resize in -> out (Pillow's
// precompute_coeffs + normalize_coeffs_8bpc).
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;  // per output: first input index, number of taps
  std::vector<int32_t> k;         // per output: ksize coefficients (22 fraction bits)
};

Taps make_taps(int in, int out, int o0, int o1, Resample f) {
  const double scale = static_cast<double>(in) / out;
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support(f) * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int n_out = o1 - o0;
  t.first.resize(n_out);
  t.count.resize(n_out);
  t.k.assign(static_cast<size_t>(n_out) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  const double ss = 1.0 / filterscale;
  for (int i = 0; i < n_out; ++i) {
    const double center = (o0 + i + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter_value(f, (x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[i] = xmin;
    t.count[i] = xmax;
  }
  return t;
}

inline uint8_t clip8(int32_t acc) {
  int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One output pixel of the horizontal pass, scalar.
inline void h_pixel(const uint8_t* p, const int32_t* k, int n, uint8_t* d) {
  int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
  for (int j = 0; j < n; ++j) {
    a0 += p[3 * j] * k[j];
    a1 += p[3 * j + 1] * k[j];
    a2 += p[3 * j + 2] * k[j];
  }
  d[0] = clip8(a0);
  d[1] = clip8(a1);
  d[2] = clip8(a2);
}

#ifdef __AVX2__
// Two rows at once: lanes 0-3 = R,G,B,junk of row y, lanes 4-7 of row y+1; the same integer
// products and sums as the scalar code, so the result is identical. Reads one byte past each
// pixel (the junk lane), which the caller keeps inside the buffer.
inline void h_pixel_2rows(const uint8_t* p0, const uint8_t* p1, const int32_t* k, int n, uint8_t* d0, uint8_t* d1) {
  __m256i acc = _mm256_set1_epi32(1 << (kPrecisionBits - 1));
  for (int j = 0; j < n; ++j) {
    int32_t v0, v1;
    std::memcpy(&v0, p0 + 3 * j, 4);
    std::memcpy(&v1, p1 + 3 * j, 4);
    __m256i px = _mm256_cvtepu8_epi32(_mm_unpacklo_epi32(_mm_cvtsi32_si128(v0), _mm_cvtsi32_si128(v1)));
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, _mm256_set1_epi32(k[j])));
  }
  acc = _mm256_srai_epi32(acc, kPrecisionBits);
  __m256i c = _mm256_min_epi32(_mm256_max_epi32(acc, _mm256_setzero_si256()), _mm256_set1_epi32(255));
  alignas(32) int32_t out[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), c);
  d0[0] = static_cast<uint8_t>(out[0]), d0[1] = static_cast<uint8_t>(out[1]), d0[2] = static_cast<uint8_t>(out[2]);
  d1[0] = static_cast<uint8_t>(out[4]), d1[1] = static_cast<uint8_t>(out[5]), d1[2] = static_cast<uint8_t>(out[6]);
}
#endif

// rows x (src RGB8 of row stride s_stride) -> taps.count() output pixels per row.
// `src_end` bounds the readable source memory (for the one-byte over-read of the SIMD path).
void horizontal(const uint8_t* src, size_t s_stride, int rows, const Taps& t, uint8_t* dst, size_t d_stride,
                const uint8_t* src_end) {
  const int n_out = static_cast<int>(t.first.size());
  int y = 0;
#ifdef __AVX2__
  for (; y + 1 < rows; y += 2) {
    const uint8_t* s0 = src + y * s_stride;
    const uint8_t* s1 = s0 + s_stride;
    uint8_t* d0 = dst + y * d_stride;
    uint8_t* d1 = d0 + d_stride;
    for (int i = 0; i < n_out; ++i) {
      const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
      const int f = t.first[i], n = t.count[i];
      if (s1 + static_cast<size_t>(f + n) * 3 + 1 > src_end) {  // last pixel of the buffer
        h_pixel(s0 + f * 3, k, n, d0 + 3 * i);
        h_pixel(s1 + f * 3, k, n, d1 + 3 * i);
      } else {
        h_pixel_2rows(s0 + f * 3, s1 + f * 3, k, n, d0 + 3 * i, d1 + 3 * i);
      }
    }
  }
#endif
  for (; y < rows; ++y) {
    const uint8_t* s = src + y * s_stride;
    uint8_t* d = dst + y * d_stride;
    for (int i = 0; i < n_out; ++i)
      h_pixel(s + static_cast<size_t>(t.first[i]) * 3, &t.k[static_cast<size_t>(i) * t.ksize], t.count[i], d + 3 * i);
  }
}

// Vertical pass: `src` row r is input row (row0 + r); `bytes` bytes per row used.
void vertical(const uint8_t* src, size_t s_stride, int row0, int bytes, const Taps& t, uint8_t* dst,
              size_t d_stride) {
  const int n_out = static_cast<int>(t.first.size());
  std::vector<int32_t> acc(bytes);
  for (int i = 0; i < n_out; ++i) {
    const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    int32_t* a = acc.data();
    for (int j = 0, n = t.count[i]; j < n; ++j) {
      const uint8_t* s = src + static_cast<size_t>(t.first[i] + j - row0) * s_stride;
      const int32_t kj = k[j];
      for (int x = 0; x < bytes; ++x) a[x] += s[x] * kj;
    }
    uint8_t* d = dst + i * d_stride;
    for (int x = 0; x < bytes; ++x) d[x] = clip8(a[x]);
  }
}

}  // namespace

bool resample_supported(int r) { return r >= 1 && r <= 5; }

void resize_window(const uint8_t* src, int w, int h, int new_w, int new_h, Resample filter, int wx, int wy,
                   int ww, int wh, uint8_t* dst, size_t dst_stride) {
  CLIPKIT_ASSERT(wx >= 0 && wy >= 0 && wx + ww <= new_w && wy + wh <= new_h && ww > 0 && wh > 0);
  const size_t s_stride = static_cast<size_t>(w) * 3;
  const bool need_h = new_w != w, need_v = new_h != h;
  if (!need_h && !need_v) {  // Pillow returns a copy
    for (int y = 0; y < wh; ++y)
      std::memcpy(dst + y * dst_stride, src + (wy + y) * s_stride + static_cast<size_t>(wx) * 3,
                  static_cast<size_t>(ww) * 3);
    return;
  }
  if (!need_v) {
    Taps th = make_taps(w, new_w, wx, wx + ww, filter);
    horizontal(src + wy * s_stride, s_stride, wh, th, dst, dst_stride, src + s_stride * h);
    return;
  }
  Taps tv = make_taps(h, new_h, wy, wy + wh, filter);
  const int r0 = tv.first.front(), r1 = tv.first.back() + tv.count.back();  // input rows used
  if (!need_h) {
    vertical(src + static_cast<size_t>(wx) * 3, s_stride, 0, ww * 3, tv, dst, dst_stride);
    return;
  }
  Taps th = make_taps(w, new_w, wx, wx + ww, filter);
  const size_t t_stride = static_cast<size_t>(ww) * 3;
  std::vector<uint8_t> tmp(t_stride * (r1 - r0));  // horizontal result, uint8 as in Pillow
  horizontal(src + r0 * s_stride, s_stride, r1 - r0, th, tmp.data(), t_stride, src + s_stride * h);
  vertical(tmp.data(), t_stride, r0, ww * 3, tv, dst, dst_stride);
}

Image resized(const Image& im, int w, int h, Resample filter) {
  Image o;
  o.width = w;
  o.height = h;
  o.rgb.resize(static_cast<size_t>(w) * h * 3);
  resize_window(im.rgb.data(), im.width, im.height, w, h, filter, 0, 0, w, h, o.rgb.data(), static_cast<size_t>(w) * 3);
  return o;
}

}  // namespace clipkit::image
