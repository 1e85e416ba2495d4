// Every op of the backend interface (backend/backend.h) on every built device, against float64
// references of its contract: results, overwrite/accumulate, dtypes, and bit-exact determinism.
// A new backend passes this file unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backend/activation_ref.h"
#include "backend/attention_ref.h"
#include "backend/backend.h"
#include "backend/dropout_hash.h"
#include "core/error.h"
#include "core/parallel.h"
#include "fd_util.h"

namespace clipkit::backend {
namespace {

using test::act_ref;
using test::randn;
using test::to_f64;

// The backend of a built device, or null with the reason when it has no device here (a CUDA build
// on a machine without a GPU: its tests skip). Any other error fails the test.
Backend* backend_or_skip(const std::string& device, std::string* why) {
  try {
    return &backend_for(device);
  } catch (const Error& e) {
    if (std::string(e.what()).find("no usable CUDA device") == std::string::npos) throw;
    *why = e.what();
    return nullptr;
  }
}

class BackendOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!be_) GTEST_SKIP() << why_;
  }
  std::string why_;
  Backend* be_ = backend_or_skip(GetParam(), &why_);
  Backend& be() { return *be_; }
  Tensor make(const std::vector<float>& v, Shape s) {
    Tensor t = be().alloc(DType::F32, std::move(s));
    be().upload(v.data(), t);
    return t;
  }
  Tensor make_i32(const std::vector<int32_t>& v) {
    Tensor t = be().alloc(DType::I32, {static_cast<int64_t>(v.size())});
    be().upload(v.data(), t);
    return t;
  }
  std::vector<float> get(const Tensor& t) {
    if (t.dtype() == DType::BF16) {
      std::vector<uint16_t> b(static_cast<size_t>(t.numel()));
      be().download(t, b.data());
      std::vector<float> v(b.size());
      for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(b[i]);
      return v;
    }
    std::vector<float> v(static_cast<size_t>(t.numel()));
    be().download(t, v.data());
    return v;
  }
};


// act(x W^T + b) + residual in float64
std::vector<double> linear_ref(const std::vector<float>& x, const std::vector<float>& W, const std::vector<float>& b,
                               int64_t M, int64_t N, int64_t K, Act a, const std::vector<float>* residual) {
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b.empty() ? 0.0 : b[n];
      for (int64_t k = 0; k < K; ++k) s += double(x[m * K + k]) * W[n * K + k];
      y[m * N + n] = act_ref(s, a) + (residual ? (*residual)[m * N + n] : 0.0);
    }
  return y;
}

// Linear forward for both weight forms and precisions, with each epilogue: bias, activation,
// a residual in another tensor, and one accumulated in place.
TEST_P(BackendOps, LinearForwardEpilogues) {
  const int64_t M = 37, N = 24, K = 40;
  const auto x = randn(M * K, 1), W = randn(N * K, 2, 0.2f), b = randn(N, 3), r = randn(M * N, 4);
  const Tensor tx = make(x, {M, K}), tw = make(W, {N, K}), tb = make(b, {N}), none;
  for (WeightUse use : {WeightUse::Inference, WeightUse::Training})
    for (Precision p : {Precision::F32, Precision::BF16}) {
      const double tol = p == Precision::F32 ? 1e-5 : 3e-2;
      for (Act a : {Act::None, Act::QuickGelu, Act::Gelu, Act::GeluNew, Act::Relu, Act::Tanh})
        for (int resid : {0, 1, 2}) {  // none, another tensor, in place
          const bool bias = a != Act::Relu;
          auto prep = be().prepare_weight(use, p);  // one per layer: the bias is part of it
          Tensor y = make(resid == 2 ? r : std::vector<float>(M * N, 0.0f), {M, N}), tr = make(r, {M, N});
          Epilogue e{a, resid == 1 ? &tr : resid == 2 ? &y : nullptr};
          be().linear(tx, {tw, bias ? tb : none, *prep, 0}, e, y);
          const auto ref = linear_ref(x, W, bias ? b : std::vector<float>{}, M, N, K, a, resid ? &r : nullptr);
          const auto got = get(y);
          EXPECT_LE(test::scaled_err(got.data(), ref), tol)
              << "use " << int(use) << " " << precision_name(p) << " " << act_name(a) << " residual " << resid;
        }
    }
}

// Training weights: the pre-activation is saved; bf16 operands come out as bf16 (the rounded fp32
// product); x_saved is the input as the backward reads it.
TEST_P(BackendOps, LinearTrainingOutputsAndSavedInput) {
  const int64_t M = 20, N = 16, K = 24;
  const auto x = randn(M * K, 5), W = randn(N * K, 6, 0.2f), b = randn(N, 7);
  const Tensor tx = make(x, {M, K}), tw = make(W, {N, K}), tb = make(b, {N});
  for (Precision p : {Precision::F32, Precision::BF16}) {
    auto prep = be().prepare_weight(WeightUse::Training, p);
    const DType od = be().operand_dtype(p, true);
    EXPECT_EQ(od, p == Precision::BF16 ? DType::BF16 : DType::F32);
    EXPECT_EQ(be().operand_dtype(p, false), DType::F32);
    Tensor pre = be().alloc(DType::F32, {M, N}), y = be().alloc(od, {M, N}), plain = be().alloc(DType::F32, {M, N});
    Tensor xs = od == DType::F32 ? tx : be().alloc(od, {M, K});
    be().linear(tx, {tw, tb, *prep, 0}, {Act::Gelu, nullptr, &pre}, y, &xs);
    be().linear(tx, {tw, tb, *prep, 0}, {}, plain, nullptr);
    EXPECT_EQ(get(pre), get(plain)) << precision_name(p);  // the same product, saved before the activation
    const auto ref = linear_ref(x, W, b, M, N, K, Act::Gelu, nullptr);
    EXPECT_LE(test::scaled_err(get(y).data(), ref), p == Precision::F32 ? 1e-5 : 3e-2);
    if (od == DType::BF16) {
      const auto xr = get(xs);
      for (int64_t i = 0; i < M * K; ++i) ASSERT_EQ(xr[i], bf16_to_f32(f32_to_bf16(x[i])));
    }
  }
}

// dx = dz W, dW = dz^T x, db = sum dz with dz = dy * act'(pre); first writes overwrite (whatever
// was there), later ones accumulate; dx accumulates on request.
TEST_P(BackendOps, LinearBackwardFirstWriteAndAccumulate) {
  const int64_t M = 33, N = 17, K = 21;
  const auto x = randn(M * K, 8), W = randn(N * K, 9, 0.2f), b = randn(N, 10), dy = randn(M * N, 11);
  const Tensor tx = make(x, {M, K}), tw = make(W, {N, K}), tb = make(b, {N});
  for (Precision p : {Precision::F32, Precision::BF16}) {
    const double tol = p == Precision::F32 ? 1e-5 : 5e-2;
    auto prep = be().prepare_weight(WeightUse::Training, p);
    const DType od = be().operand_dtype(p, true);
    Tensor pre = be().alloc(DType::F32, {M, N}), y = be().alloc(od, {M, N});
    Tensor xs = od == DType::F32 ? tx : be().alloc(od, {M, K});
    const Epilogue e{Act::QuickGelu, nullptr, &pre};
    be().linear(tx, {tw, tb, *prep, 0}, e, y, &xs);
    const auto pr = get(pre);
    std::vector<double> dz(static_cast<size_t>(M * N)), dx(static_cast<size_t>(M * K), 0.0), dW(static_cast<size_t>(N * K), 0.0),
        db(static_cast<size_t>(N), 0.0);
    for (int64_t i = 0; i < M * N; ++i) {
      const double h = 1e-6;
      dz[i] = dy[i] * (act_ref(pr[i] + h, Act::QuickGelu) - act_ref(pr[i] - h, Act::QuickGelu)) / (2 * h);
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        db[n] += dz[m * N + n];
        for (int64_t k = 0; k < K; ++k) dx[m * K + k] += dz[m * N + n] * W[n * K + k], dW[n * K + k] += dz[m * N + n] * x[m * K + k];
      }
    const std::vector<float> nan(static_cast<size_t>(N * K), std::numeric_limits<float>::quiet_NaN());
    Tensor gdy = make(dy, {M, N}), gdx = make(std::vector<float>(M * K, 5.0f), {M, K}), gW = make(nan, {N, K}),
           gb = make(std::vector<float>(N, std::numeric_limits<float>::quiet_NaN()), {N});
    be().linear_backward(xs, {tw, tb, *prep, 0}, e, gdy, &gdx, false, &gW, &gb, /*first_write=*/true);
    EXPECT_LE(test::scaled_err(get(gdx).data(), dx), tol) << precision_name(p);
    EXPECT_LE(test::scaled_err(get(gW).data(), dW), tol) << precision_name(p);
    EXPECT_LE(test::scaled_err(get(gb).data(), db), tol) << precision_name(p);
    const auto w1 = get(gW), b1 = get(gb), x1 = get(gdx);
    be().upload(dy.data(), gdy);  // dy came back as dz: run again, accumulating everything
    be().linear_backward(xs, {tw, tb, *prep, 0}, e, gdy, &gdx, true, &gW, &gb, /*first_write=*/false);
    const auto w2 = get(gW), b2 = get(gb), x2 = get(gdx);
    for (size_t i = 0; i < w1.size(); ++i) ASSERT_NEAR(w2[i], 2 * w1[i], 1e-4 * (1 + std::fabs(w1[i]))) << i;
    for (size_t i = 0; i < b1.size(); ++i) ASSERT_NEAR(b2[i], 2 * b1[i], 1e-4 * (1 + std::fabs(b1[i]))) << i;
    for (size_t i = 0; i < x1.size(); ++i) ASSERT_NEAR(x2[i], 2 * x1[i], 1e-4 * (1 + std::fabs(x1[i]))) << i;
  }
}

// A precision the device runs emulated is noted (the CLI and Python say it on load); fp32 never is.
// On the CPU held to AVX2 (the .avx2 variant of this test) bf16 and int8 both are, naming the ISA.
TEST_P(BackendOps, PrecisionNoteOnlyWhereEmulated) {
  EXPECT_EQ(be().precision_note(Precision::F32), "");
  const char* isa = std::getenv("DNNL_MAX_CPU_ISA");
  if (GetParam() == "cpu" && isa && std::string(isa) == "AVX2") {
    for (Precision p : {Precision::BF16, Precision::INT8})
      EXPECT_NE(be().precision_note(p).find("oneDNN runs avx2)"), std::string::npos) << precision_name(p);
  }
}

// The prepared form follows the master: a new version is read again.
TEST_P(BackendOps, PreparedWeightFollowsTheVersion) {
  const int64_t M = 4, N = 8, K = 8;
  const auto x = randn(M * K, 12), W = randn(N * K, 13);
  const Tensor tx = make(x, {M, K}), tw = make(W, {N, K}), none;
  for (WeightUse use : {WeightUse::Inference, WeightUse::Training}) {
    auto prep = be().prepare_weight(use, Precision::BF16);
    Tensor y = be().alloc(DType::F32, {M, N});
    be().linear(tx, {tw, none, *prep, 0}, {}, y);
    const auto before = get(y);
    std::vector<float> W2 = W;
    for (auto& v : W2) v *= 2;
    be().upload(W2.data(), tw);
    be().linear(tx, {tw, none, *prep, 1}, {}, y);
    const auto after = get(y);
    for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(after[i], 2 * before[i]) << int(use);
    be().upload(W.data(), tw);
  }
}

// Inference and training forwards equal the definition with causal and padding masks; the
// training backward equals finite differences; bf16 tracks fp32.
TEST_P(BackendOps, Attention) {
  const AttentionShape s{2, 9, 2, 8};
  const int64_t n = s.B * s.L * 3 * s.C(), nc = s.B * s.L * s.C();
  const auto qkv = randn(n, 14), dout = randn(nc, 15);
  const std::vector<int32_t> km = {1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const Tensor tq = make(qkv, {s.B * s.L, 3 * s.C()}), tm = make_i32(km);
  Arena arena(be());
  for (bool causal : {false, true}) {
    const auto f = [&](const std::vector<double>& v) { return test::attn_ref(v, s, causal, km); };
    const auto ref = f(to_f64(qkv));
    Tensor o1 = be().alloc(DType::F32, {s.B * s.L, s.C()}), o2 = be().alloc(DType::F32, {s.B * s.L, s.C()});
    be().attention(tq, o1, s, causal, &tm, {}, arena, nullptr);
    AttentionSaved saved;
    be().attention(tq, o2, s, causal, &tm, {}, arena, &saved);
    EXPECT_LE(test::scaled_err(get(o1).data(), ref), 2e-5);
    EXPECT_LE(test::scaled_err(get(o2).data(), ref), 2e-5);
    Tensor dq = be().alloc(DType::F32, {s.B * s.L, 3 * s.C()});
    be().attention_backward(make(dout, {s.B * s.L, s.C()}), saved, dq, s, {});
    EXPECT_GRAD_NEAR("dqkv", get(dq).data(), test::fd_grad(f, to_f64(qkv), dout), 1e-5);
    // bf16 operands (a bf16 training pass)
    std::vector<uint16_t> qb(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) qb[i] = f32_to_bf16(qkv[i]);
    Tensor tqb = be().alloc(DType::BF16, tq.shape()), ob = be().alloc(DType::BF16, o1.shape()), dqb = be().alloc(DType::F32, dq.shape());
    be().upload(qb.data(), tqb);
    AttentionSaved sb;
    be().attention(tqb, ob, s, causal, &tm, {}, arena, &sb);
    EXPECT_LE(test::scaled_err(get(ob).data(), ref), 3e-2);
    be().attention_backward(make(dout, {s.B * s.L, s.C()}), sb, dqb, s, {});
    EXPECT_LE(test::scaled_err(get(dqb).data(), to_f64(get(dq))), 5e-2);
  }
}

std::vector<double> ln_ref(const std::vector<double>& x, const std::vector<double>& g, const std::vector<double>& b,
                           int64_t M, int64_t C, double eps) {
  std::vector<double> y(x.size());
  for (int64_t m = 0; m < M; ++m) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[m * C + c] / C;
    for (int64_t c = 0; c < C; ++c) var += (x[m * C + c] - mu) * (x[m * C + c] - mu) / C;
    for (int64_t c = 0; c < C; ++c) y[m * C + c] = (x[m * C + c] - mu) / std::sqrt(var + eps) * g[c] + b[c];
  }
  return y;
}

TEST_P(BackendOps, LayerNorm) {
  const int64_t M = 5, C = 24;
  const float eps = 1e-5f;
  const auto x = randn(M * C, 16, 2.0f), g = randn(C, 17), b = randn(C, 18), dy = randn(M * C, 19);
  const Tensor tx = make(x, {M, C}), tg = make(g, {C}), tb = make(b, {C});
  Tensor y = be().alloc(DType::F32, {M, C}), stats = be().alloc(DType::F32, {2, M});
  be().layernorm(tx, tg, tb, eps, y, &stats);
  const auto X = to_f64(x), G = to_f64(g), Bt = to_f64(b);
  EXPECT_GRAD_NEAR("forward", get(y).data(), ln_ref(X, G, Bt, M, C, eps), 1e-5);
  Tensor dx = make(std::vector<float>(M * C, 1.0f), {M, C}), dg = make(std::vector<float>(C, 0.0f), {C}),
         db = make(std::vector<float>(C, 0.0f), {C});
  be().layernorm_backward(make(dy, {M, C}), tx, tg, stats, &dx, /*accumulate_dx=*/true, &dg, &db);
  auto fdx = test::fd_grad([&](const std::vector<double>& v) { return ln_ref(v, G, Bt, M, C, eps); }, X, dy);
  for (auto& v : fdx) v += 1.0;  // accumulated onto ones
  EXPECT_GRAD_NEAR("dx (+=)", get(dx).data(), fdx, 1e-5);
  EXPECT_GRAD_NEAR("dgamma", get(dg).data(), test::fd_grad([&](const std::vector<double>& v) { return ln_ref(X, v, Bt, M, C, eps); }, G, dy), 1e-5);
  EXPECT_GRAD_NEAR("dbeta", get(db).data(), test::fd_grad([&](const std::vector<double>& v) { return ln_ref(X, G, v, M, C, eps); }, Bt, dy), 1e-5);
  be().layernorm_backward(make(dy, {M, C}), tx, tg, stats, &dx, false, nullptr, nullptr);  // dx only
  EXPECT_GRAD_NEAR("dx (=)", get(dx).data(), test::fd_grad([&](const std::vector<double>& v) { return ln_ref(v, G, Bt, M, C, eps); }, X, dy), 1e-5);
}

// Gathers and scatters by index tensors; negative ids skip rows; the scatter-add backward skips
// padding_idx and sums repeats in row order.
TEST_P(BackendOps, EmbeddingAndRows) {
  const int64_t V = 5, C = 6;
  const auto table = randn(V * C, 20), base = randn(4 * C, 21);
  const Tensor tt = make(table, {V, C}), ids = make_i32({3, -1, 0, 3});
  Tensor y = make(base, {4, C});
  be().embedding(tt, ids, y, /*accumulate=*/true);
  auto got = get(y);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(got[0 * C + c], base[0 * C + c] + table[3 * C + c]);
    EXPECT_EQ(got[1 * C + c], base[1 * C + c]);  // id -1: untouched
    EXPECT_EQ(got[3 * C + c], base[3 * C + c] + table[3 * C + c]);
  }
  Tensor dt = make(std::vector<float>(V * C, 0.0f), {V, C});
  be().embedding_backward(make(base, {4, C}), ids, dt, /*skip_id=*/0);
  got = get(dt);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(got[3 * C + c], base[0 * C + c] + base[3 * C + c]);
    EXPECT_EQ(got[0 * C + c], 0.0f);  // skip_id
  }
  const Tensor idx = make_i32({2, 0});
  Tensor g = be().alloc(DType::F32, {2, C}), s = make(std::vector<float>(4 * C, 7.0f), {4, C});
  be().gather_rows(y, idx, g);
  be().scatter_rows(g, idx, s, /*zero_rest=*/true);
  be().scatter_add_rows(g, idx, s);
  const auto ys = get(y), gs = get(g), ss = get(s);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(gs[0 * C + c], ys[2 * C + c]);
    EXPECT_EQ(ss[2 * C + c], 2 * ys[2 * C + c]);
    EXPECT_EQ(ss[1 * C + c], 0.0f);
  }
  // bf16 rows scatter as bytes
  std::vector<uint16_t> hb = {1, 2, 3, 4};
  Tensor b16 = be().alloc(DType::BF16, {2, 2}), out16 = be().alloc(DType::BF16, {3, 2});
  be().upload(hb.data(), b16);
  be().scatter_rows(b16, make_i32({2, 0}), out16, true);
  std::vector<uint16_t> r16(6);
  be().download(out16, r16.data());
  EXPECT_EQ(r16, (std::vector<uint16_t>{3, 4, 0, 0, 1, 2}));
}

// Dropout keeps exactly the elements the counter hash keeps (scaled by 1/(1-p)), with rows
// mapped to their padded index.
TEST_P(BackendOps, DropoutIsTheCounterHash) {
  const int64_t R = 5, C = 13;
  const auto x = randn(R * C, 22);
  const Tensor rows = make_i32({7, 2, 11, 0, 4});
  for (bool mapped : {false, true}) {
    Tensor t = make(x, {R, C});
    be().dropout(t, {0.3f, 99, 5, mapped ? &rows : nullptr});
    const auto got = get(t);
    const int32_t map[] = {7, 2, 11, 0, 4};
    const uint64_t stream = dropout_stream(99, 5);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const uint64_t e = static_cast<uint64_t>((mapped ? map[r] : r) * C + c);
        const float want = dropout_dropped(stream, e, 0.3f) ? 0.0f : x[r * C + c] * (1.0f / 0.7f);
        ASSERT_EQ(got[r * C + c], want) << r << " " << c;
      }
  }
}

// The CLIP loss gradient against finite differences of its float64 value.
TEST_P(BackendOps, ClipLossGradient) {
  const int64_t B = 3, P = 5;
  std::vector<float> img(B * P), txt(B * P);
  for (int64_t i = 0; i < B * P; ++i) img[i] = std::sin(0.7f * i + 0.3f), txt[i] = std::cos(1.3f * i - 0.2f);
  float s = 1.1f;
  const Tensor ti = make(img, {B, P}), tt = make(txt, {B, P}), scale = make({s}, {1});
  Tensor di = be().alloc(DType::F32, {B, P}), dt = be().alloc(DType::F32, {B, P});
  const auto r = be().clip_loss(ti, tt, scale, &di, &dt);
  const auto gi = get(di);
  const double h = 1e-3;
  auto loss_at = [&](const std::vector<float>& a, float sc) {
    return be().clip_loss(make(a, {B, P}), tt, make({sc}, {1}), nullptr, nullptr).loss;
  };
  for (int64_t i = 0; i < B * P; ++i) {
    auto a = img;
    a[i] += static_cast<float>(h);
    const double lp = loss_at(a, s);
    a[i] -= 2 * static_cast<float>(h);
    EXPECT_NEAR(gi[i], (lp - loss_at(a, s)) / (2 * h), 2e-4) << i;
  }
  EXPECT_NEAR(r.dlogit_scale, (loss_at(img, s + 1e-3f) - loss_at(img, s - 1e-3f)) / 2e-3, 2e-4);
}

// AdamW with the clip coefficient folded in equals scaling the gradients first (float(g * coef)),
// bit for bit; the gradient norm equals float64 for any thread count.
TEST_P(BackendOps, AdamWAndGradNorm) {
  std::vector<OptimizerSlot> a, b;
  std::vector<std::vector<float>> grads;
  double ref = 0;
  for (int64_t n : {1, 7, 16, 17, 1000, 40000}) {  // SIMD widths and their tails
    const auto w = randn(n, 23 + n), g = randn(n, 24 + n, 3.0f);
    grads.push_back(g);
    for (float v : g) ref += double(v) * v;
    for (auto* slots : {&a, &b}) {
      OptimizerSlot s{make(w, {n}), make(g, {n}), make(std::vector<float>(n, 0.0f), {n}), make(std::vector<float>(n, 0.0f), {n}),
                      n % 2 == 0};
      slots->push_back(s);
    }
  }
  std::vector<Tensor> ga;
  for (auto& s : a) ga.push_back(s.g);
  const int threads = num_threads();
  set_num_threads(1);
  const double norm = be().grad_norm(ga);
  set_num_threads(2);
  EXPECT_EQ(be().grad_norm(ga), norm);  // the same bits whatever the thread count
  set_num_threads(threads);
  EXPECT_NEAR(norm, std::sqrt(ref), 1e-12 * std::sqrt(ref));
  const double coef = 1.0 / (norm + 1e-6);
  for (int64_t t = 1; t <= 3; ++t) {
    be().adamw(a, {1e-3, 0.9, 0.999, 1e-8, 0.1, coef, t});
    for (size_t i = 0; i < b.size(); ++i) {  // b: the gradients scaled first, then a plain step
      std::vector<float> g = grads[i];
      for (auto& v : g) v = static_cast<float>(v * coef);
      be().upload(g.data(), b[i].g);
      be().upload(grads[i].data(), a[i].g);
    }
    be().adamw(b, {1e-3, 0.9, 0.999, 1e-8, 0.1, 1.0, t});
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(get(a[i].w), get(b[i].w)) << "tensor " << i << " step " << t;
  }
}

// The arena hands out aligned, non-overlapping tensors; a Scope gives them back; once everything is
// back the blocks merge, and the same passes then fit in one block.
TEST_P(BackendOps, ArenaScopes) {
  Arena arena(be());
  std::vector<Tensor> seen;
  for (int pass = 0; pass < 2; ++pass) {
    Arena::Scope outer(arena);
    Tensor a = arena.alloc(DType::F32, {3});
    {
      Arena::Scope inner(arena);
      Tensor big = arena.alloc(DType::F32, {int64_t{5} << 20});  // beyond one 16 MiB block
      Tensor b = arena.alloc(DType::BF16, {7});
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
      EXPECT_NE(big.data(), a.data());
    }
    Tensor c = arena.alloc(DType::F32, {3});
    EXPECT_NE(c.data(), a.data());
    seen.push_back(c);
  }
  EXPECT_GE(arena.high_water(), (size_t{5} << 22));
}

// A captured pass (CUDA graph, or the function itself on the CPU) gives the pass's results on every
// run: live inputs re-read from host_buffer() memory, index arrays checked against the recording
// (other values: the replay is refused and the pass runs directly), a pass that waits, a pass whose
// arena grows after the capture.
TEST_P(BackendOps, CapturedPassesGiveThePassesResults) {
  const int64_t R = 6, C = 40;
  auto staging = be().host_buffer(sizeof(float) * R * C);
  float* in = static_cast<float*>(staging.get());
  std::vector<int32_t> order = {5, 0, 3, 3, 1, 2};
  std::vector<float> out(static_cast<size_t>(R * C));
  bool wait = false;
  int64_t extra = 0;  // arena bytes a pass allocates first (another size after the capture)
  auto pass = [&] {
    Arena& a = be().thread_arena();
    Arena::Scope scope(a);
    if (extra) a.alloc(DType::F32, {extra});
    Tensor x = be().input(a, in, DType::F32, {R, C});
    Tensor ids = be().input(a, order.data(), DType::I32, {R});
    Tensor y = a.alloc(DType::F32, {R, C});
    be().gather_rows(x, ids, y);
    be().add(x, y);
    if (wait) be().synchronize();
    be().download(y, out.data());
  };
  auto fill = [&](uint32_t seed) {
    const std::vector<float> v = randn(static_cast<size_t>(R * C), seed);
    std::memcpy(in, v.data(), v.size() * sizeof(float));
  };
  auto check = [&](const char* what) {
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c)
        ASSERT_EQ(out[r * C + c], in[order[r] * C + c] + in[r * C + c]) << what << " row " << r << " col " << c;
  };
  fill(1);
  pass();  // the arena settles
  std::unique_ptr<CapturedPass> g = be().capture(pass);
  check("the capturing run");
  ASSERT_TRUE(g) << "a pass of plain ops is recorded";
  for (uint32_t seed : {2u, 3u}) {
    fill(seed);
    std::fill(out.begin(), out.end(), -1.0f);
    EXPECT_TRUE(g->run());
    check("a replay with new staging contents");
  }
  order = {0, 1, 2, 3, 4, 5};  // an index array with other values: run directly
  fill(4);
  g->run();
  check("a replay with other index values");
  extra = int64_t{8} << 20;  // the arena grows (32 MiB): the recording's addresses are gone
  g->run();
  check("a replay after the arena grew");
  extra = 0;
  wait = true;  // a pass that waits for the device is not recorded, but runs
  fill(5);
  std::unique_ptr<CapturedPass> g2 = be().capture(pass);
  check("a capture of a waiting pass");
  if (g2) {
    fill(6);
    g2->run();
    check("a replay of a waiting pass");
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, BackendOps, ::testing::ValuesIn(built_devices()),
                         [](const auto& info) { return info.param; });

TEST(BackendRegistry, UnknownAndUnbuiltDevicesAreRefused) {
  EXPECT_NO_THROW(backend_for("cpu"));
  try {
    backend_for("tpu");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device tpu: unknown device (built: cpu"), std::string::npos) << e.what();
  }
  bool cuda_built = false;
  for (auto& d : built_devices()) cuda_built = cuda_built || d == "cuda";
  if (!cuda_built) {
    try {
      backend_for("cuda");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("built without the cuda backend"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(precision_from_name("fp8"), Error);
}

}  // namespace
}  // namespace clipkit::backend
