// Bit-exact reproduction of Pillow 9.4's ImagingResample and of ATen's uint8 antialiased
// interpolation for 8-bit RGB images (see resample.h). The coefficient math must be plain IEEE
// double with no FMA contraction, like Pillow's C build and ATen's.
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

constexpr int kPillowPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double pillow_filter(Resample f, double x) {
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

// ATen's HelperInterpCubic::aa_filter (a = -0.5 with antialias) with cubic_convolution1/2 of
// ATen/native/UpSample.h: the same function as Pillow's bicubic, but its second branch is
// evaluated in another order, so some weights differ in the last bits.
double aten_bicubic(double x) {
  x = std::abs(x);
  constexpr double a = -0.5;
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
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

// Fixed-point taps for output positions [o0, o1) of a 1-D resize in -> out: per output, its
// first input index, its tap count, and ksize coefficients with `precision` fraction bits.
struct Taps {
  int ksize = 0, precision = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

// The normalized double weights of output i (Pillow's precompute_coeffs, ATen's
// _compute_indices_min_size_weights_aa: the same coordinates). Returns the tap count; w has
// ksize slots.
int output_weights(int i, int in, double scale, double support, int ksize, Resample f, ResampleImpl impl,
                   int* first, double* w) {
  const double ss = 1.0 / std::max(scale, 1.0);
  const double center = (i + 0.5) * scale;
  int xmin = static_cast<int>(center - support + 0.5);
  if (xmin < 0) xmin = 0;
  int xmax = static_cast<int>(center + support + 0.5);
  if (xmax > in) xmax = in;
  xmax -= xmin;
  if (impl == ResampleImpl::AtenUint8) xmax = std::clamp(xmax, 0, ksize);
  double ww = 0.0;
  for (int x = 0; x < xmax; ++x) {
    const double arg = (x + xmin - center + 0.5) * ss;
    w[x] = impl == ResampleImpl::Pillow ? pillow_filter(f, arg) : aten_bicubic(arg);
    ww += w[x];
  }
  if (ww != 0.0)
    for (int x = 0; x < xmax; ++x) w[x] /= ww;
  *first = xmin;
  return xmax;
}

inline int32_t to_fixed(double v, int precision) {
  v *= static_cast<double>(1 << precision);
  return v < 0 ? static_cast<int32_t>(-0.5 + v) : static_cast<int32_t>(0.5 + v);
}

Taps make_taps(int in, int out, int o0, int o1, Resample f, ResampleImpl impl) {
  const double scale = static_cast<double>(in) / out;
  const double support = filter_support(f) * std::max(scale, 1.0);
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<double> w(t.ksize);
  int first = 0;
  if (impl == ResampleImpl::Pillow) {
    t.precision = kPillowPrecisionBits;
  } else {
    // ATen: the most fraction bits (< 22) that keep round(max weight * 2^(bits+1)) below 2^15,
    // the maximum taken over every output position of the resize, not only the window's.
    double wt_max = 0.0;
    for (int i = 0; i < out; ++i) {
      const int n = output_weights(i, in, scale, support, t.ksize, f, impl, &first, w.data());
      for (int x = 0; x < n; ++x) wt_max = std::max(wt_max, w[x]);
    }
    for (t.precision = 0; t.precision < 22; ++t.precision)
      if (static_cast<int>(0.5 + wt_max * (1 << (t.precision + 1))) >= (1 << 15)) break;
    if (t.precision == 0) fail("resize {} -> {}: no usable coefficient precision", in, out);
  }
  const int n_out = o1 - o0;
  t.first.resize(n_out);
  t.count.resize(n_out);
  t.k.assign(static_cast<size_t>(n_out) * t.ksize, 0);
  for (int i = 0; i < n_out; ++i) {
    const int n = output_weights(o0 + i, in, scale, support, t.ksize, f, impl, &t.first[i], w.data());
    int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    for (int x = 0; x < n; ++x) k[x] = to_fixed(w[x], t.precision);
    t.count[i] = n;
  }
  return t;
}

// Fixed point (`p` fraction bits, rounding already added) to uint8, saturating.
inline uint8_t clip8(int32_t acc, int p) {
  int32_t v = acc >> p;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One output pixel of the horizontal pass, scalar.
inline void h_pixel(const uint8_t* p, const int32_t* k, int n, int prec, uint8_t* d) {
  int32_t a0 = 1 << (prec - 1), a1 = a0, a2 = a0;
  for (int j = 0; j < n; ++j) {
    a0 += p[3 * j] * k[j];
    a1 += p[3 * j + 1] * k[j];
    a2 += p[3 * j + 2] * k[j];
  }
  d[0] = clip8(a0, prec);
  d[1] = clip8(a1, prec);
  d[2] = clip8(a2, prec);
}

#ifdef __AVX2__
// Two rows at once: lanes 0-3 = R,G,B,junk of row y, lanes 4-7 of row y+1; the same integer
// products and sums as the scalar code, so the result is identical. Reads one byte past each
// pixel (the junk lane), which the caller keeps inside the buffer.
inline void h_pixel_2rows(const uint8_t* p0, const uint8_t* p1, const int32_t* k, int n, int prec, uint8_t* d0,
                          uint8_t* d1) {
  __m256i acc = _mm256_set1_epi32(1 << (prec - 1));
  for (int j = 0; j < n; ++j) {
    int32_t v0, v1;
    std::memcpy(&v0, p0 + 3 * j, 4);
    std::memcpy(&v1, p1 + 3 * j, 4);
    __m256i px = _mm256_cvtepu8_epi32(_mm_unpacklo_epi32(_mm_cvtsi32_si128(v0), _mm_cvtsi32_si128(v1)));
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, _mm256_set1_epi32(k[j])));
  }
  acc = _mm256_srai_epi32(acc, prec);
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
        h_pixel(s0 + f * 3, k, n, t.precision, d0 + 3 * i);
        h_pixel(s1 + f * 3, k, n, t.precision, d1 + 3 * i);
      } else {
        h_pixel_2rows(s0 + f * 3, s1 + f * 3, k, n, t.precision, d0 + 3 * i, d1 + 3 * i);
      }
    }
  }
#endif
  for (; y < rows; ++y) {
    const uint8_t* s = src + y * s_stride;
    uint8_t* d = dst + y * d_stride;
    for (int i = 0; i < n_out; ++i)
      h_pixel(s + static_cast<size_t>(t.first[i]) * 3, &t.k[static_cast<size_t>(i) * t.ksize], t.count[i], t.precision,
              d + 3 * i);
  }
}

// Vertical pass: `src` row r is input row (row0 + r); `bytes` bytes per row used.
void vertical(const uint8_t* src, size_t s_stride, int row0, int bytes, const Taps& t, uint8_t* dst,
              size_t d_stride) {
  const int n_out = static_cast<int>(t.first.size());
  std::vector<int32_t> acc(bytes);
  for (int i = 0; i < n_out; ++i) {
    const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (t.precision - 1));
    int32_t* a = acc.data();
    for (int j = 0, n = t.count[i]; j < n; ++j) {
      const uint8_t* s = src + static_cast<size_t>(t.first[i] + j - row0) * s_stride;
      const int32_t kj = k[j];
      for (int x = 0; x < bytes; ++x) a[x] += s[x] * kj;
    }
    uint8_t* d = dst + i * d_stride;
    for (int x = 0; x < bytes; ++x) d[x] = clip8(a[x], t.precision);
  }
}

}  // namespace

bool resample_supported(int r) { return r >= 1 && r <= 5; }

void resize_window(const uint8_t* src, int w, int h, int new_w, int new_h, Resample filter, int wx, int wy,
                   int ww, int wh, uint8_t* dst, size_t dst_stride, ResampleImpl impl) {
  CLIPKIT_ASSERT(wx >= 0 && wy >= 0 && wx + ww <= new_w && wy + wh <= new_h && ww > 0 && wh > 0);
  const size_t s_stride = static_cast<size_t>(w) * 3;
  const bool need_h = new_w != w, need_v = new_h != h;
  if (impl == ResampleImpl::AtenUint8 && filter != Resample::Bicubic)
    fail("resize: the ATen uint8 resampler is bicubic only, not resample={}", static_cast<int>(filter));
  if (!need_h && !need_v) {  // Pillow returns a copy, ATen too
    for (int y = 0; y < wh; ++y)
      std::memcpy(dst + y * dst_stride, src + (wy + y) * s_stride + static_cast<size_t>(wx) * 3,
                  static_cast<size_t>(ww) * 3);
    return;
  }
  if (!need_v) {
    Taps th = make_taps(w, new_w, wx, wx + ww, filter, impl);
    horizontal(src + wy * s_stride, s_stride, wh, th, dst, dst_stride, src + s_stride * h);
    return;
  }
  Taps tv = make_taps(h, new_h, wy, wy + wh, filter, impl);
  const int r0 = tv.first.front(), r1 = tv.first.back() + tv.count.back();  // input rows used
  if (!need_h) {
    vertical(src + static_cast<size_t>(wx) * 3, s_stride, 0, ww * 3, tv, dst, dst_stride);
    return;
  }
  Taps th = make_taps(w, new_w, wx, wx + ww, filter, impl);
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
