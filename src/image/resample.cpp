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
// The input span [*first, *first + count) of output i; returns count.
int output_span(int i, int in, double scale, double support, int ksize, ResampleImpl impl, int* first) {
  const double center = (i + 0.5) * scale;
  int xmin = static_cast<int>(center - support + 0.5);
  if (xmin < 0) xmin = 0;
  int xmax = static_cast<int>(center + support + 0.5);
  if (xmax > in) xmax = in;
  xmax -= xmin;
  if (impl == ResampleImpl::AtenUint8) xmax = std::clamp(xmax, 0, ksize);
  *first = xmin;
  return xmax;
}

int output_weights(int i, int in, double scale, double support, int ksize, Resample f, ResampleImpl impl,
                   int* first, double* w) {
  const double ss = 1.0 / std::max(scale, 1.0);
  const double center = (i + 0.5) * scale;
  int xmin = 0;
  const int xmax = output_span(i, in, scale, support, ksize, impl, &xmin);
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
// 16 output bytes: out[b] = clip8(round + sum_j k[j] * p[j * stride + b]), the integer sums of
// the scalar code in 32-bit lanes (the same products and sums, so the same bytes).
inline void filter16(const uint8_t* p, size_t stride, const int32_t* k, int n, int prec, uint8_t* out) {
  __m256i a0 = _mm256_set1_epi32(1 << (prec - 1)), a1 = a0;
  for (int j = 0; j < n; ++j, p += stride) {
    const __m256i kj = _mm256_set1_epi32(k[j]);
    a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), kj));
    a1 = _mm256_add_epi32(a1,
                          _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))), kj));
  }
  // >> prec, then saturate to int16 and to uint8: the same as clamping to 0..255.
  const __m256i w = _mm256_permute4x64_epi64(
      _mm256_packs_epi32(_mm256_srai_epi32(a0, prec), _mm256_srai_epi32(a1, prec)), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                   _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}

// dst[c * d_stride + r] = src[r * s_stride + c] for a 16 x 16 byte block.
inline void transpose16(const uint8_t* src, size_t s_stride, uint8_t* dst, size_t d_stride) {
  __m128i a[16], b[16];
  for (int r = 0; r < 16; ++r) a[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + r * s_stride));
  for (int r = 0; r < 16; r += 2) {  // byte pairs of rows (r, r+1), columns 0-7 then 8-15
    b[r] = _mm_unpacklo_epi8(a[r], a[r + 1]);
    b[r + 1] = _mm_unpackhi_epi8(a[r], a[r + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // rows g..g+3: columns 0-3, 4-7, 8-11, 12-15
    a[g] = _mm_unpacklo_epi16(b[g], b[g + 2]);
    a[g + 1] = _mm_unpackhi_epi16(b[g], b[g + 2]);
    a[g + 2] = _mm_unpacklo_epi16(b[g + 1], b[g + 3]);
    a[g + 3] = _mm_unpackhi_epi16(b[g + 1], b[g + 3]);
  }
  for (int g = 0; g < 16; g += 8)  // rows g..g+7: column pairs (0,1), (2,3), ..., (14,15)
    for (int q = 0; q < 4; ++q) {
      b[g + 2 * q] = _mm_unpacklo_epi32(a[g + q], a[g + 4 + q]);
      b[g + 2 * q + 1] = _mm_unpackhi_epi32(a[g + q], a[g + 4 + q]);
    }
  for (int q = 0; q < 8; ++q) {  // rows 0-7 with rows 8-15: one column each
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * q * d_stride), _mm_unpacklo_epi64(b[q], b[8 + q]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * q + 1) * d_stride), _mm_unpackhi_epi64(b[q], b[8 + q]));
  }
}

// A block of up to 16 x 16 bytes: rows [0, nr) of src, bytes [0, nc), transposed into a full
// 16 x 16 block at dst (d_stride 16); the bytes outside are zero.
inline void transpose16_partial(const uint8_t* src, size_t s_stride, int nr, int nc, uint8_t* dst) {
  alignas(16) uint8_t in[16 * 16] = {};
  for (int r = 0; r < nr; ++r) std::memcpy(in + 16 * r, src + r * s_stride, static_cast<size_t>(nc));
  transpose16(in, 16, dst, 16);
}

// The horizontal pass on blocks of 16 rows, transposed so that it becomes filter16's column
// sums: a block's bytes [b0, b1) become 16-byte rows (one per byte position, its 16 row values),
// each output byte (pixel i, channel c) is filter16 over taps 48 bytes apart, and the results are
// transposed back into dst's rows.
void horizontal_simd(const uint8_t* src, size_t s_stride, int rows, const Taps& t, uint8_t* dst, size_t d_stride) {
  const int n_out = static_cast<int>(t.first.size());
  int b1 = 0;
  for (int i = 0; i < n_out; ++i) b1 = std::max(b1, (t.first[i] + t.count[i]) * 3);
  const int b0 = t.first.front() * 3;
  const int nb = b1 - b0, out_bytes = n_out * 3;
  std::vector<uint8_t> tin(static_cast<size_t>(nb + 15) / 16 * 256), tout(static_cast<size_t>(out_bytes + 15) / 16 * 256);
  for (int y = 0; y < rows; y += 16) {
    const int nr = std::min(16, rows - y);
    const uint8_t* s = src + static_cast<size_t>(y) * s_stride + b0;
    for (int c = 0; c < nb; c += 16) {
      if (nr == 16 && c + 16 <= nb) transpose16(s + c, s_stride, tin.data() + 16 * c, 16);
      else transpose16_partial(s + c, s_stride, nr, std::min(16, nb - c), tin.data() + 16 * c);
    }
    for (int i = 0; i < n_out; ++i) {
      const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
      const uint8_t* p = tin.data() + static_cast<size_t>(t.first[i] * 3 - b0) * 16;
      for (int ch = 0; ch < 3; ++ch) filter16(p + 16 * ch, 48, k, t.count[i], t.precision, tout.data() + 16 * (3 * i + ch));
    }
    uint8_t* d = dst + static_cast<size_t>(y) * d_stride;
    for (int c = 0; c < out_bytes; c += 16) {
      if (nr == 16 && c + 16 <= out_bytes) {
        transpose16(tout.data() + 16 * c, 16, d + c, d_stride);
      } else {
        alignas(16) uint8_t blk[16 * 16];
        transpose16(tout.data() + 16 * c, 16, blk, 16);
        for (int r = 0; r < nr; ++r) std::memcpy(d + r * d_stride + c, blk + 16 * r, static_cast<size_t>(std::min(16, out_bytes - c)));
      }
    }
  }
}
#endif

// One output row of the vertical pass for bytes [x0, x1), scalar.
void vertical_scalar(const uint8_t* src, size_t s_stride, const int32_t* k, int n, int prec, int x0, int x1,
                     uint8_t* d) {
  for (int x = x0; x < x1; ++x) {
    int32_t a = 1 << (prec - 1);
    for (int j = 0; j < n; ++j) a += src[j * s_stride + x] * k[j];
    d[x] = clip8(a, prec);
  }
}

// rows x (src RGB8 of row stride s_stride) -> taps.count() output pixels per row.
void horizontal(const uint8_t* src, size_t s_stride, int rows, const Taps& t, uint8_t* dst, size_t d_stride) {
#ifdef __AVX2__
  if (!resample_simd_disabled_for_testing.load(std::memory_order_relaxed))
    return horizontal_simd(src, s_stride, rows, t, dst, d_stride);
#endif
  const int n_out = static_cast<int>(t.first.size());
  for (int y = 0; y < rows; ++y) {
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
  int simd_bytes = 0;
#ifdef __AVX2__
  if (!resample_simd_disabled_for_testing.load(std::memory_order_relaxed)) simd_bytes = bytes / 16 * 16;
#endif
  for (int i = 0; i < n_out; ++i) {
    const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    const uint8_t* s = src + static_cast<size_t>(t.first[i] - row0) * s_stride;
    uint8_t* d = dst + i * d_stride;
#ifdef __AVX2__
    for (int x = 0; x < simd_bytes; x += 16) filter16(s + x, s_stride, k, t.count[i], t.precision, d + x);
#endif
    vertical_scalar(s, s_stride, k, t.count[i], t.precision, simd_bytes, bytes, d);
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
    horizontal(src + wy * s_stride, s_stride, wh, th, dst, dst_stride);
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
  horizontal(src + r0 * s_stride, s_stride, r1 - r0, th, tmp.data(), t_stride);
  vertical(tmp.data(), t_stride, r0, ww * 3, tv, dst, dst_stride);
}

namespace {

// The input range [*lo, *hi) that outputs [o0, o1) of an in -> out resize read (make_taps' spans).
void source_range(int in, int out, int o0, int o1, Resample f, ResampleImpl impl, int* lo, int* hi) {
  if (in == out) {  // a copy
    *lo = o0;
    *hi = o1;
    return;
  }
  const double scale = static_cast<double>(in) / out;
  const double support = filter_support(f) * std::max(scale, 1.0);
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  *lo = in;
  *hi = 0;
  for (int i = o0; i < o1; ++i) {
    int first = 0;
    const int n = output_span(i, in, scale, support, ksize, impl, &first);
    if (n <= 0) continue;
    *lo = std::min(*lo, first);
    *hi = std::max(*hi, first + n);
  }
  if (*hi <= *lo) *lo = *hi = 0;
}

}  // namespace

PixelRect resize_window_source(int w, int h, int new_w, int new_h, Resample filter, int wx, int wy, int ww, int wh,
                               ResampleImpl impl) {
  CLIPKIT_ASSERT(wx >= 0 && wy >= 0 && wx + ww <= new_w && wy + wh <= new_h && ww > 0 && wh > 0);
  PixelRect r;
  source_range(w, new_w, wx, wx + ww, filter, impl, &r.x0, &r.x1);
  source_range(h, new_h, wy, wy + wh, filter, impl, &r.y0, &r.y1);
  return r;
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
